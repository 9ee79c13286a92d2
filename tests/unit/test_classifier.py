"""The classifier's pieces that need no trained model: normalisation, features, split, CLI errors (danger:
test_danger.py; the not-a-request rules: test_screen.py)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from classifiers import load_taxonomy, normalize
from classifiers.cli import main
from classifiers.data import Example, is_heldout, split
from classifiers.features import Featurizer, char_gram_ids, char_gram_text
from classifiers.model import fit_temperature, softmax, stratified_folds
from classifiers.text import analyze


# ---------------------------------------------------------------------------- normalisation
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("這裡發生火災，請幫忙報警", "这里发生火灾,请帮忙报警"),  # 繁→简, full-width comma → ','
        ("隔壁著火了，我睡著了沒聽到", "隔壁着火了,我睡着了没听到"),  # Taiwan forms of 着
        ("ＡＢＣ１２３　全角！", "ABC123 全角!"),  # full-width letters, digits, ideographic space
        ("  路灯\t坏了\n\n好几天了  ", "路灯 坏了 好几天了"),  # whitespace collapsed and trimmed
        ("看这里 https://example.com/a?b=1 谢谢", "看这里 谢谢"),  # URL stripped
        ("www.gov.cn/x 网站打不开", "网站打不开"),
        ("发到 someone@example.com 了", "发到 了"),
        ("垃圾没人收😡😡[捂脸]", "垃圾没人收"),  # emoji and WeChat emoticon tags stripped
        ("👨‍👩‍👧 一家人", "一家人"),  # ZWJ sequences too
        ("a\x00b\u200bc\ufeffd", "abcd"),  # control and zero-width characters
        ("", ""),
        ("   ", ""),
    ],
)
def test_normalize(raw, expected):
    assert normalize(raw) == expected


def test_normalize_keeps_ordinary_text_and_is_idempotent():
    text = "我们村3组的路灯坏了,晚上黑得很嘛"
    assert normalize(text) == text
    assert normalize(normalize("這裡發生火災，請幫忙報警 😡")) == normalize("這裡發生火災，請幫忙報警 😡")


@pytest.mark.parametrize("garbage", ["\ud800\udfff", "\x00\x01\x02", bytes(range(256)).decode("latin-1"),
                                     "\ufffd" * 50, "x" * 10_000])
def test_normalize_never_raises(garbage):
    assert isinstance(normalize(garbage), str)


def test_normalize_is_linear_on_long_runs():
    import time

    start = time.perf_counter()
    normalize("路灯坏了" * 2500)
    normalize("x" * 10_000)
    assert time.perf_counter() - start < 0.5  # a backtracking URL/e-mail pattern took seconds here


def test_analyze_drops_stop_words_and_folds_digits():
    doc = analyze("我们3组的低保嘛，办了12年了")
    assert "低保" in doc.words  # user dictionary word kept whole
    assert "的" not in doc.words and "嘛" not in doc.words and "," not in doc.words
    assert "0" in doc.chars and "3" not in doc.chars


def test_user_dictionary_keeps_governance_terms_whole():
    words = analyze("网格员说秸秆焚烧和宅基地的事找村委会").words
    for term in ("网格员", "秸秆焚烧", "宅基地", "村委会"):
        assert term in words


def test_taxonomy():
    tax = load_taxonomy()
    assert set(tax.categories) == {"社会民生", "农业产业", "平安建设", "生态环境", "安全生产"}
    assert len(tax.departments) == 12
    assert tax.most_urgent == "急难事"
    assert tax.urgency_names == ("急难事", "揪心事", "操心事", "烦心事", "期盼事")
    assert tax.allows("社会民生", "minzheng") and not tax.allows("社会民生", "paichusuo")


# ---------------------------------------------------------------------------- features and model pieces
def test_char_gram_ids_round_trip():
    ids = char_gram_ids("路灯坏", 1, 3)
    assert sorted(char_gram_text(i) for i in ids) == sorted(["路", "灯", "坏", "路灯", "灯坏", "路灯坏"])
    assert len(char_gram_ids("", 1, 2)) == 0 and len(char_gram_ids("a", 2, 3)) == 0


def test_featurizer_batch_bags_and_single_row_agree():
    docs = [analyze(t) for t in ["路灯坏了好几天", "低保怎么申请嘛", "河里有人电鱼", "路灯不亮", "燃气泄漏了快来"]]
    fz = Featurizer((1, 3), head_chars=4)
    X = fz.fit_transform(docs[:4])
    assert np.allclose(X.toarray(), fz.transform(docs[:4]).toarray())
    bags = fz.bags(docs)
    fz2 = Featurizer((1, 3), head_chars=4).fit_bags(bags, np.arange(4))
    assert np.allclose(fz2.transform_bags(bags, np.arange(4, 5)).toarray(), fz.transform(docs[4:]).toarray())
    cols, vals = fz.transform_one(docs[0])
    row = np.zeros(fz.n_features)
    row[cols] = vals
    assert np.allclose(row, X[0].toarray().ravel())
    # each of the four blocks is L2-normalised on its own
    assert np.isclose(np.dot(vals, vals), 4.0)
    assert fz.transform_one(analyze(""))[0].size == 0


_TRAIN_TEXTS = ["路灯坏了好几天", "低保怎么申请嘛", "河里有人电鱼", "路灯不亮了快来修", "燃气泄漏了快来",
                "村里的河有人电鱼 路灯也坏了 低保的事情还没人管 燃气的味道很大 快来看看吧 谢谢 abc 123"]


@settings(max_examples=80, deadline=None)
@given(
    texts=st.lists(st.text(alphabet="路灯坏了低保申请河里有人电鱼燃气泄漏快来 ab0,。", max_size=150), min_size=1,
                   max_size=6),
    head_chars=st.integers(1, 60),
    char_ngrams=st.sampled_from([(1, 1), (1, 2), (1, 3), (2, 2), (2, 3), (3, 3)]),
)
def test_prediction_features_equal_the_training_features(texts, head_chars, char_ngrams):
    """transform() (vectorised, used by every prediction) computes exactly the rows that training computed for
    the same texts (bags), whatever the lengths, the head size and the n-gram range."""
    docs = [analyze(t) for t in _TRAIN_TEXTS + texts]
    fz = Featurizer(char_ngrams, head_chars=head_chars)
    bags = fz.bags(docs)
    fz.fit_bags(bags, np.arange(len(_TRAIN_TEXTS)))
    new = np.arange(len(_TRAIN_TEXTS), len(docs))
    expected = fz.transform_bags(bags, new).toarray()
    X = fz.transform(docs[len(_TRAIN_TEXTS):])
    assert X.has_sorted_indices
    assert np.allclose(X.toarray(), expected)
    for i, doc in enumerate(docs[len(_TRAIN_TEXTS):]):
        cols, vals = fz.transform_one(doc)
        row = np.zeros(fz.n_features)
        row[cols] = vals
        assert np.allclose(row, expected[i])


def test_temperature_scaling_calibrates_overconfident_scores():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 600)
    S = rng.normal(size=(600, 3))
    S[np.arange(600), y] += 1.0  # weakly informative scores …
    S *= 10  # … made ten times overconfident
    T = fit_temperature(S, y)
    assert T > 3
    conf = softmax(S / T).max(axis=1)
    acc = (S.argmax(axis=1) == y).mean()
    assert abs(conf.mean() - acc) < 0.1


def test_stratified_folds_are_balanced_and_deterministic():
    labels = ["a"] * 50 + ["b"] * 10 + [None] * 5
    f1, f2 = stratified_folds(labels, 5, seed=1), stratified_folds(labels, 5, seed=1)
    assert (f1 == f2).all()
    for k in range(5):
        assert sum(1 for lab, f in zip(labels, f1) if lab == "b" and f == k) == 2


# ---------------------------------------------------------------------------- held-out split
def test_heldout_split_is_stable_and_follows_the_normalised_text():
    rows = [Example(f"第{i}条 路灯坏了", "社会民生", "jianshe") for i in range(400)]
    train, held = split(rows)
    assert 0.12 < len(held) / len(rows) < 0.28
    assert {r.text for r in held} == {r.text for r in rows if is_heldout(r.text)}
    assert not {r.text for r in held} & {r.text for r in train}
    assert is_heldout("這裡發生火災") == is_heldout("这里发生火灾")


# ---------------------------------------------------------------------------- CLI: user mistakes are one line, exit 2
def test_cli_missing_file(tmp_path, capsys):
    code = main(["train", "--data", str(tmp_path / "nope.csv"), "--label-column", "label", "--model",
                 str(tmp_path / "m.pkl")])
    err = capsys.readouterr().err
    assert code == 2 and "no such file" in err and "Traceback" not in err


def test_cli_missing_column(tmp_path, capsys):
    data = tmp_path / "d.csv"
    data.write_text("title,body,label\n路灯坏了,好几天了,城乡建设\n", encoding="utf-8")
    code = main(["train", "--data", str(data), "--text-column", "title,content", "--label-column", "label", "--model",
                 str(tmp_path / "m.pkl")])
    err = capsys.readouterr().err
    assert code == 2 and "missing column(s) content" in err and "Traceback" not in err


def test_cli_generic_model_needs_a_model_path(tmp_path, capsys):
    data = tmp_path / "d.csv"
    data.write_text("text,label\n路灯坏了,a\n低保,b\n", encoding="utf-8")
    assert main(["train", "--data", str(data), "--label-column", "label"]) == 2
    assert "--model" in capsys.readouterr().err


def test_cli_missing_model(tmp_path, capsys):
    assert main(["predict", "--model", str(tmp_path / "none.pkl")]) == 2
    assert "no model at" in capsys.readouterr().err


def test_cli_not_a_model(tmp_path, capsys):
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"not a pickle at all")
    assert main(["evaluate", "--model", str(bad)]) == 2
    assert "not a readable sidan model" in capsys.readouterr().err
