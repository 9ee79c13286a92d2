# sidan — the two commands: `make run` (server on http://127.0.0.1:8000, SQLite + in-process store, demo data)
# and `make test` (the suite; also against PostgreSQL + Redis when they answer, mandatory with CI=true).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
MODEL  := var/models/router.pkl

.PHONY: install run test model migrate demo-data bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "sidan needs Python 3.11 or newer")'
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

# The routing model is trained from corpus/ once; `sidan classify train` retrains (and refuses a worse model).
$(MODEL): | $(STAMP)
	$(BIN)/sidan classify train

model: $(MODEL)

migrate: install
	$(BIN)/sidan migrate

demo-data: migrate
	$(BIN)/sidan demo-data --orders 300 --if-empty

run: install model demo-data
	$(BIN)/sidan serve

# Two workers (pytest-xdist), each test file on one worker: the suite waits on databases and servers as much as
# on the CPU. TEST_WORKERS=0 runs it in this process.
TEST_WORKERS ?= 2
test: install
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

bench: install model
	$(BIN)/python bench/classifier.py

clean:
	rm -rf var .pytest_cache .hypothesis
