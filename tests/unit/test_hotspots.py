"""热点诉求, the grouping (orders/hotspots.py): by village, by how alike the texts read (a likeness given here, not the
model's), average linkage; and the alert's message (bot/notifier.py) and its settings."""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from bot.notifier import field_value, render
from orders.config import ConfigError, load_settings
from orders.hotspots import Report, find_hotspots, groups, place_of

T0 = datetime(2026, 3, 10, 8, 0, tzinfo=timezone.utc)


def bigrams(text: str) -> set[str]:
    return {text[i:i + 2] for i in range(len(text) - 1)}


class Jaccard:
    """Likeness by shared character pairs: enough to tell a lamp from a water outage in these tests."""

    def pairwise(self, texts):
        sets = [bigrams(text) for text in texts]
        return np.array([[len(a & b) / len(a | b) if a | b else 0.0 for b in sets] for a in sets])

    def top_terms(self, texts, n=5):
        counts = Counter(gram for text in texts for gram in bigrams(text))
        return [gram for gram, _ in counts.most_common(n)]


class Table:
    """Likeness read from a table {(i, j): value} by the texts' first character (a digit): for shapes of groups."""

    def __init__(self, pairs: dict[tuple[int, int], float]) -> None:
        self.pairs = pairs

    def pairwise(self, texts):
        ids = [int(text[0]) for text in texts]
        return np.array([[1.0 if a == b else self.pairs.get((min(a, b), max(a, b)), 0.0) for b in ids] for a in ids])

    def top_terms(self, texts, n=5):
        return []


def report(i: int, text: str, village: str = "楼坝村", minutes: int | None = None) -> Report:
    at = T0 + timedelta(minutes=i * 10 if minutes is None else minutes)
    return Report(i, f"YK20260310-{i:04d}", village, text, at)


LAMPS = ["三组路灯坏了晚上很黑", "三组的路灯坏了好几天", "路灯坏了晚上很黑看不见"]


def test_three_reports_of_one_matter_in_one_village_are_one_hot_spot():
    reports = [report(1, LAMPS[0]), report(2, "家里停水了一整天"), report(3, LAMPS[1]), report(4, LAMPS[2])]
    [spot] = find_hotspots(reports, Jaccard(), threshold=0.2, min_reports=3)
    assert spot.village == "楼坝村" and spot.count == 3
    assert spot.numbers == ["YK20260310-0001", "YK20260310-0003", "YK20260310-0004"]
    assert (spot.first_at, spot.last_at) == (T0 + timedelta(minutes=10), T0 + timedelta(minutes=40))
    assert "路灯" in spot.terms


def test_the_same_words_from_other_villages_are_not_one_hot_spot():
    reports = [report(1, LAMPS[0]), report(2, LAMPS[1], "新滩村"), report(3, LAMPS[2], "安富村"),
               report(4, LAMPS[0], "新滩村")]
    assert find_hotspots(reports, Jaccard(), threshold=0.2, min_reports=3) == []
    [spot] = find_hotspots(reports, Jaccard(), threshold=0.2, min_reports=2)
    assert spot.village == "新滩村" and spot.order_ids == [2, 4]


def test_fewer_reports_than_the_threshold_are_no_hot_spot():
    reports = [report(1, LAMPS[0]), report(2, LAMPS[1])]
    assert find_hotspots(reports, Jaccard(), threshold=0.2, min_reports=3) == []


def test_reports_that_read_differently_stay_apart():
    reports = [report(1, "三组路灯坏了"), report(2, "村口垃圾没人清理"), report(3, "邻居家的狗半夜叫")]
    assert find_hotspots(reports, Jaccard(), threshold=0.2, min_reports=2) == []


def test_a_chain_of_likeness_does_not_join_what_does_not_read_alike():
    # 1~2 and 2~3 read alike, 1 and 3 not at all (a report naming two matters between them): single linkage would
    # make one group of the three, the average keeps 3 out.
    table = Table({(1, 2): 0.9, (2, 3): 0.6, (1, 3): 0.0})
    assert groups(["1", "2", "3"], table.pairwise, 0.5) == [[0, 1], [2]]
    # ...and joins a third that reads like both.
    table = Table({(1, 2): 0.9, (2, 3): 0.6, (1, 3): 0.5})
    assert groups(["1", "2", "3"], table.pairwise, 0.5) == [[0, 1, 2]]


def test_groups_of_nothing_and_of_one():
    assert groups([], Jaccard().pairwise, 0.2) == []
    assert groups(["路灯坏了"], Jaccard().pairwise, 0.2) == [[0]]
    with pytest.raises(ValueError):
        groups(["a", "b"], lambda texts: np.zeros((3, 3)), 0.2)


def test_the_largest_hot_spot_comes_first():
    water = ["二组停水了一整天", "二组停水了没人管", "停水了一整天没人管", "二组又停水了一整天"]
    reports = [report(i + 1, text) for i, text in enumerate(LAMPS)]
    reports += [report(i + 10, text, "新滩村") for i, text in enumerate(water)]
    spots = find_hotspots(reports, Jaccard(), threshold=0.2, min_reports=3)
    assert [(spot.village, spot.count) for spot in spots] == [("新滩村", 4), ("楼坝村", 3)]


def test_the_place_is_the_grids_village_else_the_village_the_text_names():
    villages = ["新滩", "新滩村", "楼坝村"]
    assert place_of("新滩村二组路灯坏了", "楼坝村", villages) == "楼坝村"  # the location wins
    assert place_of("新滩村二组路灯坏了", None, villages) == "新滩村"  # the longest name it contains
    assert place_of("新滩那边路灯坏了", None, villages) == "新滩"
    assert place_of("路灯坏了", None, villages) is None


def test_the_supervisors_alert_names_the_village_the_count_and_the_orders():
    payload = {"to": "staff", "number": "YK20260310-0001", "village": "楼坝村", "count": 12, "hours": 6,
               "terms": ["路灯", "不亮"], "numbers": [f"YK20260310-{i:04d}" for i in range(1, 11)],
               "summary": "楼坝村 12 件:路灯、不亮"}
    rendered = render("notify_hotspot", payload)
    assert rendered.title == "热点诉求:楼坝村12件"
    assert "楼坝村 6 小时内有 12 件相近的反映(路灯、不亮)" in rendered.text
    assert "YK20260310-0010等" in rendered.text  # ten numbers named, "等" for the other two
    assert len(field_value("thing2", rendered.title)) <= 20


def test_hotspot_settings_have_defaults_and_refuse_nonsense(tmp_path):
    env = {"SIDAN_ENV": "test"}
    settings = load_settings(env=env)
    assert (settings.hotspots.window_hours, settings.hotspots.min_reports) == (6, 3)
    assert load_settings(env={**env, "SIDAN_HOTSPOTS_MIN_REPORTS": "5"}).hotspots.min_reports == 5
    with pytest.raises(ConfigError, match="hotspots.min_reports"):
        load_settings(env={**env, "SIDAN_HOTSPOTS_MIN_REPORTS": "1"})
    with pytest.raises(ConfigError, match="hotspots.similarity"):
        load_settings(env={**env, "SIDAN_HOTSPOTS_SIMILARITY": "0"})
