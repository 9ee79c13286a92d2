"""The statistics on a small fixed history, computed by hand (see stats_history.py), on both backends."""
from __future__ import annotations

import pytest

from orders.clock import FrozenClock
from orders.errors import InvalidInput
from orders.stats import Filters, Stats
from tests.integration.stats_history import NOW, build_history


@pytest.fixture
async def history(orm, settings, fake_classifier):
    return await build_history(settings, fake_classifier)


@pytest.fixture
def stats() -> Stats:
    return Stats("Asia/Shanghai", clock=FrozenClock(NOW))


def rate(figures, name):
    r = figures.rates[name]
    return r.numerator, r.denominator, r.display


async def test_march_figures_match_the_hand_count(history, stats):
    march = await stats.summary(stats.period("2026-03"))
    assert march.counts == {
        "received": 8,          # A B C D E F H I (G is February local time)
        "matters": 8,           # nothing merged
        "merged": 0,
        "dispatched": 7,        # all but F
        "accepted": 6,          # A B C E H I (D never accepted, F cancelled)
        "resolved": 4,          # A C H I stand resolved; B is being redone
        "closed_unresolved": 0,
        "rated": 4,             # A B H I
        "ratings": 5,           # A5 B2 H3 I1 I4
        "awaiting_rating": 0,
        "closed_unrated": 1,    # C
        "unrated": 1,
        "cancelled": 1,         # F
        "invalid": 0,
        "open": 3,              # B D E
        "awaiting_acceptance": 0,
        "overdue": 3,           # B (reopen + 3 days), D (never accepted), E (1-day 急难事)
        "resolved_late": 1,     # C: 5 days against 3
        "escalated": 1,         # E
        "reopened": 2,          # B I
        "auto_dispatched": 6,   # A B D E H I
    }
    assert rate(march, "response") == (5, 7, "71.4%")       # on time: A C E H I; decided: those + B + D
    assert rate(march, "completion") == (4, 6, "66.7%")
    assert rate(march, "resolution") == (3, 4, "75.0%")     # latest ratings: A5 ✓ B2 ✗ H3 ✓ I4 ✓
    assert rate(march, "satisfaction") == (2, 5, "40.0%")   # 4–5: A5 I4
    assert rate(march, "auto_dispatch") == (6, 7, "85.7%")
    assert rate(march, "auto_corrected") == (1, 6, "16.7%")  # D was returned
    # Time to accept: H 5m, E 8m, C 10m, B 20m (after the reopen), I 25m (after the reopen), A 30m.
    accept = march.durations["accept"]
    assert (accept.count, accept.median, accept.p90) == (6, 600, 1800)
    # Time to resolve (from submission): H 1d5m, A 2d30m, I 3d1h40m, C 5d1h10m.
    resolve = march.durations["resolve"]
    assert (resolve.count, resolve.median, resolve.p90) == (4, 174600, 436200)


async def test_no_ratings_means_a_dash_not_zero(history, stats):
    weijian = await stats.summary(stats.period("2026-03"), Filters(department="weijian"))
    assert weijian.counts["received"] == 1 and weijian.counts["closed_unrated"] == 1
    assert rate(weijian, "satisfaction") == (0, 0, "—")
    assert rate(weijian, "resolution") == (0, 0, "—")
    assert weijian.rates["satisfaction"].value is None
    assert rate(weijian, "response") == (1, 1, "100.0%")
    assert weijian.to_dict()["rates"]["satisfaction"] == {"numerator": 0, "denominator": 0, "value": None,
                                                         "display": "—"}


async def test_an_empty_period_has_no_rates_at_all(history, stats):
    empty = await stats.summary(stats.period("2025-01"))
    assert empty.counts["received"] == 0
    assert {name: r.display for name, r in empty.rates.items()} == dict.fromkeys(empty.rates, "—")
    assert empty.durations["accept"].median is None and empty.durations["accept"].to_dict()["median_display"] == "—"


async def test_breakdowns_by_department_category_and_day(history, stats):
    march = stats.period("2026-03")
    by_department = {f.label: f for f in await stats.figures(march, by="department")}
    assert {label: f.counts["received"] for label, f in by_department.items()} == {
        "村镇建设办": 2, "民政办": 2, "卫健办": 1, "综合执法队": 1, "应急管理办": 1, "未派单": 1}
    assert rate(by_department["民政办"], "satisfaction") == (1, 3, "33.3%")  # B2 I1 I4
    assert rate(by_department["民政办"], "response") == (1, 2, "50.0%")      # I on time, B late
    by_category = {f.label: f.counts["received"] for f in await stats.figures(march, by="category")}
    assert by_category == {"社会民生": 6, "平安建设": 1, "安全生产": 1}
    trend = await stats.trend(march, by="day")
    assert len(trend) == 31 and trend[0].key == "2026-03-01"
    per_day = {f.key: f.counts["received"] for f in trend if f.counts["received"]}
    assert per_day == {"2026-03-01": 1, "2026-03-02": 2, "2026-03-03": 2, "2026-03-05": 1, "2026-03-06": 1,
                       "2026-03-09": 1}
    weeks = {f.key: f.counts["received"] for f in await stats.trend(march, by="week")}
    assert weeks["2026-02-23"] == 1 and weeks["2026-03-02"] == 6 and weeks["2026-03-09"] == 1
    months = {f.key: f.counts["received"] for f in await stats.figures(stats.period("2026"), by="month")}
    assert months == {"2026-02": 1, "2026-03": 8}
    # The groups add up to the whole.
    assert sum(f.counts["ratings"] for f in by_department.values()) == 5


async def test_the_overdue_list_and_the_feed(history, stats):
    overdue = await stats.overdue()
    # Oldest deadline first: G (28 Feb + 3 d), E (6 Mar 09:00), D (6 Mar 12:00), B (6 Mar 15:00).
    assert [row["number"] for row in overdue] == [history[k] for k in "GEDB"]
    assert overdue[1]["escalation_level"] == 1 and overdue[1]["department"] == "应急管理办"
    assert all(row["overdue_seconds"] > 0 for row in overdue)
    feed = await stats.feed(limit=3)
    assert [row["number"] for row in feed] == [history[k] for k in "IHG"]
    newer = await stats.feed(after_id=feed[1]["id"])
    assert [row["number"] for row in newer] == [history["I"]]


async def test_bad_requests_are_refused_clearly(history, stats):
    with pytest.raises(InvalidInput, match="时间段格式不对"):
        stats.period("last week")
    with pytest.raises(InvalidInput, match="没有这个部门"):
        await stats.summary(stats.period("2026-03"), Filters(department="nosuch"))
    with pytest.raises(InvalidInput, match="不能按"):
        await stats.figures(stats.period("2026-03"), by="colour")
