# sidan: slim, non-root; dependencies in their own layer so code changes rebuild fast.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN useradd --create-home --uid 10001 sidan
WORKDIR /app

# pg_dump / pg_restore for `sidan backup` and `sidan restore` (a client not older than the PostgreSQL server)
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client \
 && rm -rf /var/lib/apt/lists/*

# 1. dependencies only (pinned in pyproject.toml)
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml','rb'))['project']['dependencies']))" \
      > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt

# 2. the code, the corpus and the trained routing model
COPY . .
RUN pip install --no-deps -e . \
 && sidan classify train --force \
 && chown -R sidan:sidan /app/var

USER sidan
ENV SIDAN_ENV=production SIDAN_APP_HOST=0.0.0.0
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=5 \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"
CMD ["sidan", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
