"""The danger list (corpus/danger.toml, classifiers/danger.py) on its own test set (corpus/danger-tests.toml) and on
the cases the issue named: frauds in progress and geological hazards with people exposed are 急难事 with advice;
questions, campaigns, projects, past events and worries are not."""
from __future__ import annotations

import pytest

from classifiers.danger import DangerFileError, DangerList, load_danger, load_danger_tests
from classifiers.data import load_corpus

POSITIVES, NEGATIVES = load_danger_tests()


@pytest.fixture(scope="module")
def danger() -> DangerList:
    return load_danger()


def test_the_test_set_covers_every_kind_and_every_kind_has_advice(danger):
    kinds = {k.name for k in danger.kinds}
    assert {kind for kind, _ in POSITIVES} == kinds
    assert {"fire", "gas", "violence", "suicide", "collapse", "fraud", "geohazard"} <= kinds
    for kind in danger.kinds:
        assert kind.advice and kind.label
    assert {"questions", "campaigns", "past", "worries", "ordinary"} <= {group for group, _ in NEGATIVES}


@pytest.mark.parametrize(("kind", "text"), POSITIVES)
def test_every_positive_fires_with_its_kind(danger, kind, text):
    hit = danger.find(text)
    assert hit is not None, text
    assert hit.kind == kind and hit.match


@pytest.mark.parametrize(("group", "text"), NEGATIVES)
def test_no_negative_fires(danger, group, text):
    assert danger.find(text) is None


def test_the_held_out_set_is_mostly_right(danger):
    """The patterns were never tuned on these: a floor, not every line (bench/classifier.py prints the figures)."""
    positives, negatives = load_danger_tests(heldout=True)
    found = sum(danger.find(t) is not None for _, t in positives)
    false = sum(danger.find(t) is not None for _, t in negatives)
    assert len(positives) >= 20 and len(negatives) >= 15
    assert found / len(positives) >= 0.85 and found / max(found + false, 1) >= 0.9


@pytest.mark.parametrize("text", ["陌生人打电话说我中奖了，要我先转账交税", "对方让我把验证码发给他", "客服说要把钱转到安全账户",
                                  "网上有人拉我刷单", "短信里有个链接说点进去给银行卡解冻", "有人冒充公检法说我涉案"])
def test_a_fraud_in_progress_is_an_emergency_with_the_anti_fraud_advice(danger, text):
    hit = danger.find(text)
    assert hit is not None and hit.kind == "fraud"
    assert "不要转账" in hit.advice and "110" in hit.advice and "96110" in hit.advice


@pytest.mark.parametrize("text", ["后山裂缝越来越大,下面住着人", "坡上的石头松动了，底下就是学校", "屋后山体开裂，随时要垮"])
def test_a_geohazard_with_people_exposed_is_an_emergency(danger, text):
    hit = danger.find(text)
    assert hit is not None and hit.kind == "geohazard" and "撤" in hit.advice


@pytest.mark.parametrize("text", ["防诈骗宣传什么时候来", "滑坡治理项目什么时候开工", "反诈知识培训安排在哪天", "去年滑坡冲坏的路还没修",
                                  "以前着过一次火", "万一煤气泄漏怎么办", "后山有条裂缝"])
def test_questions_campaigns_the_past_and_signs_without_people_are_not(danger, text):
    assert danger.find(text) is None


def test_the_present_outweighs_the_past_in_a_clause(danger):
    assert danger.find("去年滑坡的地方，今天又滑坡了，正在往下冲") is not None
    assert danger.find("上次着火的那家现在又着火了，赶紧来") is not None


def test_a_day_or_two_ago_is_recent_not_current(danger):
    text = "家里老房子前天晚上失火，东西全烧光了"
    assert danger.find(text) is None
    recent = danger.recent(text)
    assert recent is not None and recent.kind == "fire"
    assert danger.recent("去年失火烧了房子") is None  # long past: neither
    assert danger.recent("着火了") is None  # now: find(), not recent()


def test_traditional_and_full_width_text_is_normalised_first(danger):
    assert danger.find("樓道裡有煤氣味，好像漏氣了！").kind == "gas"


def test_odd_input_never_raises(danger):
    for text in ["", "   ", "\ud800\x00", "x" * 10_000, "着火" * 3000]:
        danger.find(text)
        danger.recent(text)


def test_the_corpus_emergencies_are_still_found(danger):
    """Independent of the test set: of the corpus rows labelled 急难事, nearly all fire (the old word list was written
    alongside them), and few rows of the other levels do (those few are frauds in progress the issue wants caught)."""
    rows = load_corpus()
    urgent = [ex for ex in rows if ex.urgency == "急难事"]
    others = [ex for ex in rows if ex.urgency != "急难事"]
    assert sum(danger.find(ex.text) is not None for ex in urgent) / len(urgent) >= 0.95
    assert sum(danger.find(ex.text) is not None for ex in others) / len(others) <= 0.01


# ---------------------------------------------------------------------------- the file
def _data(**kind) -> dict:
    return {"context": {"topics": "宣传"}, "kinds": [{"name": "fire", "advice": "拨打 119", "patterns": ["着火"], **kind}]}


def test_a_broken_pattern_is_named(tmp_path):
    with pytest.raises(DangerFileError, match=r"fire\.patterns"):
        DangerList(_data(patterns=["着火(", "起火"]))


def test_a_missing_key_is_named():
    with pytest.raises(DangerFileError, match="advice"):
        DangerList({"context": {}, "kinds": [{"name": "fire", "patterns": ["着火"]}]})


def test_a_kind_named_twice_is_refused():
    data = _data()
    data["kinds"].append(dict(data["kinds"][0]))
    with pytest.raises(DangerFileError, match="twice"):
        DangerList(data)


def test_a_missing_or_unreadable_file_is_one_clear_error(tmp_path):
    with pytest.raises(DangerFileError, match="nope.toml"):
        load_danger(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("kinds = [", encoding="utf-8")
    with pytest.raises(DangerFileError, match="bad.toml"):
        load_danger(bad)


def test_signs_need_a_cue_and_topics_silence_a_clause():
    danger = DangerList(_data(signs=["冒烟"], cues=["房"]))
    assert danger.find("电线冒烟了") is None
    assert danger.find("房子里电线冒烟了").kind == "fire"
    assert danger.find("着火了").kind == "fire"
    assert danger.find("着火宣传") is None
