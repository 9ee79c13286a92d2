"""A routing model trained once per session on the real corpus (quick setting, into a tmp dir), and what it must do:
Traditional routes like Simplified, danger sets 急难事 with its kind and advice, texts that are no request are told
apart from short real ones, odd input answers cleanly, the artifact round-trips, a correction changes the next
model's answer, and a worse model is not promoted."""
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
    texts = [t for pair in TWINS for t in pair] + ["", "我家隔壁着火了", "你好10", "asdfgh qwerty", "有人冒充公检法要我转账"]
    for one, many in zip((router.predict(t) for t in texts), router.predict_many(texts)):
        assert (one.category, one.department, one.urgency, one.terms, one.danger, one.danger_kind, one.request,
                one.not_request_reason) == \
               (many.category, many.department, many.urgency, many.terms, many.danger, many.danger_kind, many.request,
                many.not_request_reason)
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
    assert set(data) == {"category", "department", "urgency", "confidence", "terms", "danger", "danger_kind",
                         "danger_advice", "request", "not_request_reason"}
    assert 0 <= data["confidence"] <= 1


def test_suggestions_are_the_best_three_allowed_pairs_the_first_being_the_answer(router, taxonomy):
    for text in ("村口的路灯坏了", "两口子吵架", "低保怎么申请"):
        one = router.predict(text)
        assert 1 <= len(one.suggestions) <= 3
        assert one.suggestions[0][:2] == (one.category, one.department)
        assert all((c, d) in taxonomy.pairs for c, d, _ in one.suggestions)
        scores = [p for _, _, p in one.suggestions]
        assert scores == sorted(scores, reverse=True) and scores[0] <= one.confidence + 1e-4
        assert len({(c, d) for c, d, _ in one.suggestions}) == len(one.suggestions)
    batch = router.predict_many(["村口的路灯坏了", "两口子吵架"])
    assert [p.suggestions for p in batch] == [router.predict(t).suggestions for t in ("村口的路灯坏了", "两口子吵架")]
    assert router.predict("").suggestions == ()  # nothing to go on: no suggestion


def test_router_offers_normalize(router):
    assert router.normalize("路燈 壞了") == "路灯 坏了"


# ---------------------------------------------------------------------------- danger by kind
@pytest.mark.parametrize(("text", "kind"), [("有个陌生人打电话说我涉嫌洗钱，要我把钱转到安全账户", "fraud"),
                                            ("后山裂缝越来越大,下面住着人", "geohazard"), ("楼道里一股煤气味", "gas")])
def test_danger_gives_its_kind_and_advice_and_the_most_urgent_level(router, text, kind):
    p = router.predict(text)
    assert (p.urgency, p.danger, p.danger_kind, p.request) == ("急难事", True, kind, True)
    assert p.danger_advice == router.danger_list.advice[kind]


@pytest.mark.parametrize("text", ["防诈骗宣传什么时候来", "滑坡治理项目什么时候开工"])
def test_questions_about_danger_are_no_emergency(router, text):
    p = router.predict(text)
    assert not p.danger and p.danger_kind is None and p.danger_advice is None and p.request


def test_danger_of_a_day_or_two_ago_is_urgent_without_advice(router):
    p = router.predict("家里老房子前天晚上失火，东西全烧光了，一家五口现在挤在亲戚家")
    assert p.urgency == "急难事" and not p.danger and p.danger_advice is None


# ---------------------------------------------------------------------------- not a request
def _training_texts() -> set[str]:
    from classifiers.screen import load_not_requests, load_short_requests

    return {normalize(ex.text).lower() for ex in [*load_corpus(), *load_not_requests(), *load_short_requests()]}


# Written for these tests: none is in corpus/ (checked below), so they are outside the model's training set.
UNSEEN_SHORT_REQUESTS = [
    "路灯坏了", "有人打架", "停水了", "狗咬人", "停电好几天了", "井盖被人偷了", "垃圾好几天没人拉", "楼上往下漏水", "有人偷牛", "桥断了",
    "自来水是黄的", "门口有人占道卖菜", "低保一直没发", "村口那段路全是坑", "隔壁养的狗半夜乱叫", "小区停水", "又停电", "水管漏水",
    "有人在河里炸鱼", "邻居家的狗咬了我", "工资拖了三个月", "路边垃圾没人清", "想问问低保咋申请", "家里漏雨了", "孩子被狗咬了",
]
UNSEEN_NOT_REQUESTS = [
    "你好15", "测试一下下", "测试测试123", "hello 在不在", "吃晚饭了没有", "哈哈哈好好笑", "谢谢您们啦", "今天好热啊", "早上好呀领导们",
    "在吗在吗有人吗", "试试发个消息", "我就随便看看", "谢谢，辛苦你们啦", "好的好的收到了", "晚上好呀", "😂😂😂", "[呲牙][呲牙]",
    "666666", "嘿嘿嘿嘿", "jjjjjjj", "sdfghj", "喂喂喂有人在吗", "今天吃什么好呢", "无聊得很", "周末愉快呀", "发错了不好意思哈",
    "测试一下能不能收到", "好的谢谢领导",
]


def test_the_unseen_examples_are_really_unseen():
    seen = _training_texts()
    assert [t for t in UNSEEN_SHORT_REQUESTS + UNSEEN_NOT_REQUESTS if normalize(t).lower() in seen] == []


@pytest.mark.parametrize("text", UNSEEN_SHORT_REQUESTS)
def test_short_real_requests_pass(router, text):
    p = router.predict(text)
    assert (p.request, p.not_request_reason) == (True, None)
    assert router.is_request(text) == (True, None)


def test_texts_that_are_no_request_are_refused_with_a_reason(router):
    from classifiers import REASONS

    preds = router.predict_many(UNSEEN_NOT_REQUESTS)
    refused = [p for p in preds if not p.request]
    assert len(refused) / len(preds) >= 0.9, [t for t, p in zip(UNSEEN_NOT_REQUESTS, preds) if p.request]
    assert all(p.not_request_reason in REASONS for p in refused)
    assert all(p.not_request_reason is None for p in preds if p.request)


@pytest.mark.parametrize(("text", "reasons"), [
    *[(f"你好{i}", {"greeting"}) for i in range(10, 21)],  # each of these became an order (issue #17)
    ("asdfgh qwerty", {"keyboard"}), ("测试", {"test"}), ("test", {"test"}), ("123", {"digits"}), ("在吗", {"greeting"}),
    ("吃了吗", {"chitchat"}), ("哈哈", {"chitchat", "mash"}), ("😀😀", {"empty"}), ("谢谢你们", {"thanks"}),
    ("  ", {"empty"}), ("？？？", {"symbols"}), ("啊啊啊啊", {"repeated"}),
])
def test_the_reported_junk_is_no_request(router, text, reasons):
    assert router.is_request(text)[0] is False
    assert router.is_request(text)[1] in reasons


def test_a_long_letter_opening_with_thanks_is_a_request(router):
    """The learned screen judges short texts only: formal letters open with pleasantries."""
    from classifiers.screen import MODEL_MAX_CHARS

    opening = "您好,感谢您在百忙之中抽空看我的留言,辛苦了,谢谢!"
    letter = opening + "我们小区后门那条路晚上一盏灯都没有,老人孩子走路经常摔跤,希望能装几盏路灯。"
    assert len(normalize(letter)) > MODEL_MAX_CHARS
    assert router.is_request(letter) == (True, None)
    assert router.is_request(opening) == (False, "thanks")


@pytest.mark.parametrize("text", ["救命", "救命救命救命", "着火了", "有人跳河"])
def test_danger_is_always_a_request(router, text):
    assert router.is_request(text) == (True, None)


def test_the_screen_is_measured_on_held_out_rows(router):
    held = router.metrics["screen"]["heldout"]
    assert held["requests"]["n"] == router.metrics["heldout"]["n"]
    assert held["requests"]["share"] <= 0.01  # the goal: real requests almost never refused
    assert held["short_requests"]["n"] >= 50 and held["short_requests"]["share"] <= 0.05
    assert held["not_requests"]["n"] >= 100 and held["not_requests"]["share"] >= 0.75
    assert 0.0 < router.metrics["screen"]["threshold"] < 1.0


def test_the_artifact_round_trips_with_its_screen_and_danger_list(router, tmp_path):
    path = router.save(tmp_path / "copy.pkl")
    copy = Router.load(path)
    texts = UNSEEN_SHORT_REQUESTS + UNSEEN_NOT_REQUESTS + ["后山裂缝越来越大,下面住着人"]
    assert copy.predict_many(texts) == router.predict_many(texts)
    assert copy.screen_model.threshold == router.screen_model.threshold
    assert copy.artifact["danger"] == router.danger_list.data


def test_a_model_without_a_screen_keeps_the_rules(model_path, tmp_path):
    """An artifact from before the screen: its rules still refuse the obvious, the model's share is not guessed."""
    art = pickle.loads(model_path.read_bytes())
    del art["screen"]
    old = tmp_path / "old.pkl"
    old.write_bytes(pickle.dumps(art))
    router = Router.load(old)
    assert router.screen_model is None
    assert router.is_request("asdfgh qwerty") == (False, "keyboard")
    assert router.is_request("😀") == (False, "empty")
    assert router.is_request("你好10") == (True, None)


def test_without_corpus_the_model_uses_its_own_danger_list(model_path, tmp_path, monkeypatch):
    monkeypatch.setenv("SIDAN_CORPUS_DIR", str(tmp_path))  # no danger.toml there
    router = Router.load(model_path)
    assert router.predict("后山裂缝越来越大,下面住着人").danger_kind == "geohazard"
    art = pickle.loads(model_path.read_bytes())
    del art["danger"]
    art["taxonomy"]["danger_words"] = ["着火"]  # a model from before corpus/danger.toml
    p = Router(art).predict("隔壁着火了")
    assert p.danger and p.urgency == "急难事" and p.danger_advice


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


def test_the_screen_scores_one_text_as_it_scores_a_batch(router):
    """One message takes a shortcut (no sparse matrix): it must give the batch's numbers."""
    import numpy as np

    from classifiers.text import analyze

    docs = [analyze(t) for t in UNSEEN_SHORT_REQUESTS + UNSEEN_NOT_REQUESTS]
    p_batch, reason_batch = router.screen_model.p_request(docs)
    singles = [router.screen_model.p_request([doc]) for doc in docs]
    assert np.allclose(p_batch, [p[0] for p, _ in singles])
    assert list(reason_batch) == [r[0] for _, r in singles]
