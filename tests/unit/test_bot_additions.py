"""Which texts read as an afterthought to the last report (bot.additions), and when the router lets one join it."""
from __future__ import annotations

import pytest

from bot.additions import ADDITION_CHARS, addition_of, belongs_to
from tests.support import FakePrediction


@pytest.mark.parametrize("text, note", [
    ("对了,灯杆在村委会门口", "灯杆在村委会门口"),
    ("对了灯杆在村委会门口", "灯杆在村委会门口"),
    ("还有,晚上特别黑", "晚上特别黑"),
    ("还有就是晚上特别黑", "晚上特别黑"),
    ("另外 水管是昨天开始漏的", "水管是昨天开始漏的"),
    ("忘了说:水管在老井旁边", "水管在老井旁边"),
    ("顺便说一下,那里没有路灯", "那里没有路灯"),
    ("对了，灯杆在村委会门口", "灯杆在村委会门口"),  # full-width comma
])
def test_an_afterthought_gives_the_words_it_adds(text, note):
    assert addition_of(text) == note


@pytest.mark.parametrize("text", [
    "村口的路灯坏了",  # no opener
    "还有人在河里电鱼",  # 还有 without a pause: "there are people…"
    "另外一个村也停水了",
    "对了",  # nothing added
    "对了," + "路灯" * ADDITION_CHARS,  # too long to be an afterthought
])
def test_other_texts_are_not_afterthoughts(text):
    assert addition_of(text) is None


def prediction(department="jianshe", confidence=0.9, **flags) -> FakePrediction:
    return FakePrediction("社会民生", department, flags.pop("urgency", "操心事"), confidence, **flags)


def test_the_router_keeps_another_departments_matter_and_every_emergency_apart():
    assert belongs_to(prediction(), "jianshe", "急难事", 0.6)  # the same department
    assert belongs_to(prediction("minzheng", 0.3), "jianshe", "急难事", 0.6)  # not sure of another
    assert belongs_to(prediction("minzheng", request=False), "jianshe", "急难事", 0.6)  # no request of its own
    assert not belongs_to(prediction("minzheng", 0.9), "jianshe", "急难事", 0.6)  # sure of another
    assert not belongs_to(prediction(danger=True), "jianshe", "急难事", 0.6)
    assert not belongs_to(prediction(urgency="急难事"), "jianshe", "急难事", 0.6)
