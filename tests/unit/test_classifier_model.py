"""A routing model trained once per session on the real corpus (quick setting, into a tmp dir), and what it must do:
Traditional routes like Simplified, danger words set 急难事, odd input answers cleanly, a correction changes the
next model's answer, and a worse model is not promoted."""
from __future__ import annotations

import csv
import pickle
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from classifiers import ModelVersionWarning, Prediction, Router, load_taxonomy, normalize
from classifiers.cli import main
from classifiers.data import load_corpus, split
from classifiers.text import model_text

QUICK = ["--quick", "--folds", "3"]


@pytest.fixture(scope="session")
def model_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "router.pkl"
    assert main(["train", *QUICK, "--model", str(path)]) == 0
    return path


@pytest.fixture(scope="session")
def router(model_path) -> Router:
    return Router.load(model_path)


@pytest.fixture(scope="session")
def taxonomy():
    return load_taxonomy()


# ---------------------------------------------------------------------------- the artifact
def test_artifact_records_heldout_accuracy_corpus_hash_and_versions(router):
    art = router.artifact
    held = router.metrics["heldout"]
    _, heldout_rows = split(load_corpus())
    assert held["n"] == len(heldout_rows) > 150
    assert held["category_accuracy"] > 0.6 and held["department_accuracy"] > 0.55  # chance: 0.24 and 0.2
    assert held["routing_accuracy"] <= min(held["category_accuracy"], held["department_accuracy"])
    assert router.metrics["train_rows"] == router.metrics["corpus_rows"] - held["n"]  # held-out never trained on
    assert len(art["corpus_hash"]) == 64 and art["created_at"].endswith("Z")
    assert {"numpy", "scipy", "scikit-learn", "jieba", "opencc"} <= set(art["libraries"])
    assert router.version.startswith("routing-")


def test_confidence_is_calibrated_on_the_heldout_split(router):
    _, heldout = split(load_corpus())
    preds = router.predict_many([ex.text for ex in heldout])
    right = [(p.category, p.department) == (ex.category, ex.department) for ex, p in zip(heldout, preds)]
    mean_conf = sum(p.confidence for p in preds) / len(preds)
    assert abs(mean_conf - sum(right) / len(right)) < 0.15
    confident = [ok for ok, p in zip(right, preds) if p.confidence >= 0.9]
    assert confident and sum(confident) / len(confident) > sum(right) / len(right)


def test_other_library_versions_warn(model_path, tmp_path):
    art = pickle.loads(model_path.read_bytes())
    art["libraries"]["scikit-learn"] = "0.0.1"
    old = tmp_path / "old.pkl"
    old.write_bytes(pickle.dumps(art))
    with pytest.warns(ModelVersionWarning, match="scikit-learn 0.0.1"):
        Router.load(old)


def test_a_model_tokenises_as_it_was_trained(router, model_path, tmp_path, monkeypatch):
    """New models are trained without jieba's HMM and say so; a file from before the setting was recorded was
    trained with it, and keeps getting it."""
    import classifiers.router as router_module
    from classifiers.text import analyze

    assert analyze("楼道应急灯全坏了", hmm=True).words != analyze("楼道应急灯全坏了", hmm=False).words
    assert router.artifact["analyzer"] == {"jieba_hmm": False}
    art = pickle.loads(model_path.read_bytes())
    del art["analyzer"]
    old = tmp_path / "old.pkl"
    old.write_bytes(pickle.dumps(art))
    used = []

    def spy(text, *, normalized=False, hmm):
        used.append(hmm)
        return analyze(text, normalized=normalized, hmm=hmm)

    monkeypatch.setattr(router_module, "analyze", spy)
    router.predict("楼道应急灯全坏了")
    Router.load(old).predict("楼道应急灯全坏了")
    assert used == [False, True]


# ---------------------------------------------------------------------------- predictions
TWINS = [
    ("村口的路燈壞了好幾天了，晚上黑漆漆的", "村口的路灯坏了好几天了，晚上黑漆漆的"),
    ("我想申請低保，家裡實在困難", "我想申请低保，家里实在困难"),
    ("隔壁養豬場的糞水直接排到河裡，臭得很", "隔壁养猪场的粪水直接排到河里，臭得很"),
    ("鄰居占了我家的宅基地，吵了好幾回了", "邻居占了我家的宅基地，吵了好几回了"),
    ("我家隔壁著火了，快來人", "我家隔壁着火了，快来人"),
]


@pytest.mark.parametrize(("traditional", "simplified"), TWINS)
def test_traditional_routes_like_its_simplified_twin(router, traditional, simplified):
    t, s = router.predict(traditional), router.predict(simplified)
    assert (t.category, t.department, t.urgency) == (s.category, s.department, s.urgency)
    assert t.confidence == pytest.approx(s.confidence)


@pytest.mark.parametrize("text", ["老街口那家面馆后厨着火了", "我家隔壁著火了，快來人", "楼道里一股煤氣味，好像漏氣了", "有人拿刀在菜市场门口追人",
                                  "我婆婆说不想活了，要喝农药", "后山塌方了，把路堵了"])
def test_danger_words_set_the_most_urgent_level(router, text):
    p = router.predict(text)
    assert p.urgency == "急难事" and p.danger


def test_no_danger_in_an_ordinary_request(router):
    p = router.predict("希望村里多装几盏路灯")
    assert not p.danger


@pytest.mark.parametrize("text", ["", "   \t\n ", "路灯坏了" * 2500, "x" * 10_000,
                                  bytes(range(256)).decode("latin-1"), "\ud800\udc00\x00\ufffd" * 100,
                                  b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe".decode("utf-8", "surrogateescape")])
def test_odd_input_answers_cleanly(router, taxonomy, text):
    p = router.predict(text)
    assert isinstance(p, Prediction)
    assert 0.0 <= p.confidence <= 1.0
    assert p.urgency in taxonomy.urgencies
    assert p.category is None or taxonomy.allows(p.category, p.department)
    assert isinstance(p.as_json()["terms"], list)


def test_empty_input_goes_to_a_person(router):
    assert router.predict("").confidence == 0.0
    assert router.predict("  ").confidence == 0.0


def test_department_respects_the_allowed_pairs(router, taxonomy):
    _, heldout = split(load_corpus())
    for p in router.predict_many([ex.text for ex in heldout]):
        assert taxonomy.allows(p.category, p.department)


def test_predict_many_agrees_with_predict(router):
    texts = [t for pair in TWINS for t in pair] + ["", "我家隔壁着火了"]
    for one, many in zip((router.predict(t) for t in texts), router.predict_many(texts)):
        assert (one.category, one.department, one.urgency, one.terms, one.danger) == \
               (many.category, many.department, many.urgency, many.terms, many.danger)
        assert one.confidence == pytest.approx(many.confidence)


def test_predict_is_thread_safe(router):
    texts = [t for pair in TWINS for t in pair] * 10
    expected = [router.predict(t) for t in texts]
    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(router.predict, texts)) == expected


def test_terms_are_readable_pieces_of_the_text(router):
    text = "我想申请低保，家里实在困难"
    p = router.predict(text)
    assert 1 <= len(p.terms) <= 5
    assert "低保" in p.terms
    for term in p.terms:
        assert term in model_text(normalize(text))


def test_as_json(router):
    data = router.predict("村口的路灯坏了").as_json()
    assert set(data) == {"category", "department", "urgency", "confidence", "terms", "danger"}
    assert 0 <= data["confidence"] <= 1


def test_router_offers_normalize(router):
    assert router.normalize("路燈 壞了") == "路灯 坏了"


# ---------------------------------------------------------------------------- the learning loop
def test_a_correction_changes_the_next_models_answer(router, tmp_path):
    text = "我们小区门口那个共享单车堆得乱七八糟的，人都过不去"
    before = router.predict(text)
    correction = ("平安建设", "zhifa") if (before.category, before.department) != ("平安建设", "zhifa") \
        else ("社会民生", "jianshe")
    path = tmp_path / "corrected.pkl"
    assert main(["train", *QUICK, "--model", str(path)], extra_examples=[(text, *correction)]) == 0
    after = Router.load(path)
    assert (after.predict(text).category, after.predict(text).department) == correction
    assert after.metrics["extra_examples"] == 1


@pytest.fixture
def small_corpus(tmp_path) -> Path:
    """Every fourth corpus row: the same promotion logic, a fraction of the training time."""
    directory = tmp_path / "requests"
    directory.mkdir()
    rows = load_corpus()[::4]
    with (directory / "small.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "category", "department", "urgency"])
        for ex in rows:
            writer.writerow([ex.text, ex.category, ex.department, ex.urgency])
    return directory


def _poison(corpus_dir: Path) -> list[tuple[str, str, str]]:
    """Wrong corrections: every training text relabelled with another category's first department."""
    tax = load_taxonomy()
    cats = list(tax.categories)
    train_rows, _ = split(load_corpus(corpus_dir))
    out = []
    for ex in train_rows:
        wrong = cats[(cats.index(ex.category) + 1) % len(cats)]
        out.append((ex.text, wrong, tax.categories[wrong][0]))
    return out


def test_a_worse_model_is_not_promoted_unless_forced(small_corpus, tmp_path, monkeypatch, capsys):
    live = tmp_path / "live.pkl"
    monkeypatch.setenv("SIDAN_CLASSIFIER_MODEL_PATH", str(live))  # the default model path
    args = ["train", *QUICK, "--corpus", str(small_corpus)]
    assert main(args) == 0
    good = live.read_bytes()
    good_version = Router.load(live).version
    capsys.readouterr()

    poison = _poison(small_corpus)
    assert main(args, extra_examples=poison) == 1
    out = capsys.readouterr().out
    assert "NOT PROMOTED" in out and "--force" in out
    assert live.read_bytes() == good  # the live model is untouched

    assert main([*args, "--force"], extra_examples=poison) == 0
    worse = Router.load(live)
    assert worse.version != good_version
    assert worse.metrics["heldout"]["routing_accuracy"] < Router(pickle.loads(good)).metrics["heldout"]["routing_accuracy"]

    # and a better model replaces a worse live one
    capsys.readouterr()
    assert main(args) == 0
    assert "promoted" in capsys.readouterr().out
    assert Router.load(live).metrics["heldout"]["routing_accuracy"] > worse.metrics["heldout"]["routing_accuracy"]


def test_default_model_path(monkeypatch, tmp_path):
    from classifiers import default_model_path

    monkeypatch.delenv("SIDAN_CLASSIFIER_MODEL_PATH", raising=False)
    assert default_model_path().parts[-3:] == ("var", "models", "router.pkl")
    monkeypatch.setenv("SIDAN_CLASSIFIER_MODEL_PATH", str(tmp_path / "x.pkl"))
    assert default_model_path() == tmp_path / "x.pkl"


def test_loading_never_unpickles_foreign_code(tmp_path):
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"format": "sidan-router/1", "x": warnings.warn}))
    from classifiers import ModelFileError

    with pytest.raises(ModelFileError):
        Router.load(evil)
