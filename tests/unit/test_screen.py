"""The not-a-request screen's parts that need no trained model: the rules, the threshold, the labelled files
(corpus/not-requests/*.txt, corpus/short-requests.txt). The model itself: test_classifier_model.py."""
from __future__ import annotations

import numpy as np
import pytest

from classifiers import normalize
from classifiers.data import load_corpus, split
from classifiers.screen import (REASONS, RULE_REASONS, fit_threshold, load_not_requests, load_short_requests,
                                rule_reason, screen_data)


# ---------------------------------------------------------------------------- the rules
@pytest.mark.parametrize(("text", "reason"), [
    ("", "empty"), ("   \n\t", "empty"), ("😀😀👍", "empty"), ("[微笑][捂脸]", "empty"), ("https://example.com/x", "empty"),
    ("？？？", "symbols"), ("。。。。", "symbols"), ("...!!!", "symbols"), ("~~~", "symbols"),
    ("123", "digits"), ("10", "digits"), ("１２３４５", "digits"), ("138 0013 8000", "digits"),
    ("啊啊啊啊", "repeated"), ("哈哈哈哈哈", "repeated"), ("嗯嗯嗯", "repeated"), ("sdfsdf", "repeated"), ("1212", "digits"),
    ("aaaa", "repeated"), ("asdfgh qwerty", "keyboard"), ("jjjjj", "repeated"), ("zxcv", "keyboard"),
    ("sdfg hjkl", "keyboard"), ("1qaz2wsx", "keyboard"), ("QWERTY!!", "keyboard"), ("dfghjk", "keyboard"),
])
def test_rules_catch_the_obvious(text, reason):
    assert rule_reason(normalize(text)) == reason


@pytest.mark.parametrize("text", ["路灯坏了", "有人打架", "停水了", "狗咬人", "救命救命", "着火着火", "test", "hello", "ok",
                                  "wifi坏了", "3组停电", "你好10", "哈哈", "110报警了没人来"])
def test_rules_leave_everything_else_to_the_model(text):
    assert rule_reason(normalize(text)) is None


def test_rules_never_refuse_a_real_request():
    texts = [ex.text for ex in load_corpus()] + [ex.text for ex in load_short_requests()]
    assert [t for t in texts if rule_reason(normalize(t))] == []


# ---------------------------------------------------------------------------- the threshold
def test_the_threshold_refuses_at_most_the_allowed_share_of_each_group():
    rng = np.random.default_rng(0)
    p = np.concatenate([rng.uniform(0.6, 1.0, 1000), rng.uniform(0.05, 1.0, 200)])
    groups = ["corpus"] * 1000 + ["short"] * 200
    t = fit_threshold(p, groups, max_refused=0.01)
    short = p[1000:]
    assert (short < t).sum() <= 2 and (p[:1000] < t).sum() <= 10
    assert (short <= t).sum() >= 2  # the highest such threshold: one more step would refuse one more
    assert fit_threshold(np.array([0.9, 0.95]), ["a", "a"], max_refused=0.0) == 0.9


# ---------------------------------------------------------------------------- the labelled files
@pytest.fixture(scope="module")
def not_requests():
    return load_not_requests()


def test_every_learned_reason_has_enough_varied_examples(not_requests):
    by_reason: dict[str, list[str]] = {}
    for ex in not_requests:
        by_reason.setdefault(ex.label, []).append(ex.text)
    assert set(by_reason) == set(REASONS) - set(RULE_REASONS)
    assert all(len(texts) >= 100 for texts in by_reason.values()), {k: len(v) for k, v in by_reason.items()}
    assert len(not_requests) >= 600
    short = load_short_requests()
    assert len(short) >= 300 and all(len(normalize(ex.text)) <= 20 for ex in short)


def test_no_text_has_two_labels_or_appears_twice(not_requests):
    seen: dict[str, str] = {}
    corpus = {normalize(ex.text).lower() for ex in load_corpus()}
    for ex in [*not_requests, *load_short_requests()]:
        key = normalize(ex.text).lower()
        assert key not in seen, (ex.text, ex.label, seen.get(key))
        assert key not in corpus or ex.label == "request", ex.text
        seen[key] = ex.label


def test_an_unknown_reason_file_is_refused(tmp_path):
    (tmp_path / "weather.txt").write_text("今天天气好\n", encoding="utf-8")
    with pytest.raises(ValueError, match="weather"):
        load_not_requests(tmp_path)


def test_comments_and_blank_lines_are_not_texts(tmp_path):
    (tmp_path / "greeting.txt").write_text("# a comment\n\n你好\n  在吗  \n", encoding="utf-8")
    assert [ex.text for ex in load_not_requests(tmp_path)] == ["你好", "在吗"]


def test_screen_data_holds_out_a_fifth_and_leaves_rule_cases_out_of_training():
    train, heldout = split(load_corpus())
    data = screen_data(train, heldout)
    texts = {ex.text for ex in data.train}
    assert not texts & {ex.text for ex in data.heldout_not_requests}
    assert not texts & {ex.text for ex in data.heldout_short}
    assert not texts & {ex.text for ex in heldout}
    assert 0.1 < len(data.heldout_not_requests) / len(load_not_requests()) < 0.3
    assert all(rule_reason(normalize(ex.text)) is None for ex in data.train)
    assert {ex.label for ex in data.train} == {"request"} | (set(REASONS) - set(RULE_REASONS))
