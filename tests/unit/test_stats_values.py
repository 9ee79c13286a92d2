"""Pure parts of the statistics: rates and their display, periods people type, durations."""
from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from orders.errors import InvalidInput
from orders.stats import RATE_DEFINITIONS, Rate, Spread, format_duration, parse_period

TZ = ZoneInfo("Asia/Shanghai")
TODAY = date(2026, 3, 20)


def test_a_rate_keeps_its_numerator_and_denominator():
    rate = Rate(5, 7)
    assert (rate.numerator, rate.denominator) == (5, 7)
    assert rate.value == pytest.approx(5 / 7)
    assert rate.display == "71.4%"
    assert rate.to_dict() == {"numerator": 5, "denominator": 7, "value": 0.714286, "display": "71.4%"}


@pytest.mark.parametrize("rate, shown", [(Rate(0, 0), "—"), (Rate(0, 3), "0.0%"), (Rate(3, 3), "100.0%")])
def test_no_denominator_is_a_dash_never_zero_or_hundred(rate, shown):
    assert rate.display == shown
    assert (rate.value is None) == (rate.denominator == 0)


def test_every_rate_has_a_chinese_definition():
    assert set(RATE_DEFINITIONS) == {"response", "completion", "resolution", "satisfaction", "auto_dispatch",
                                     "auto_corrected"}
    assert [RATE_DEFINITIONS[k][0] for k in ("response", "completion", "resolution", "satisfaction")] == \
           ["响应率", "办结率", "解决率", "满意率"]


@pytest.mark.parametrize("text, first, last, label", [
    ("today", "2026-03-20", "2026-03-20", "今天"),
    ("yesterday", "2026-03-19", "2026-03-19", "昨天"),
    ("7d", "2026-03-14", "2026-03-20", "最近 7 天"),
    ("month", "2026-03-01", "2026-03-31", "2026 年 3 月"),
    ("last-month", "2026-02-01", "2026-02-28", "2026 年 2 月"),
    ("2025-12", "2025-12-01", "2025-12-31", "2025 年 12 月"),
    ("2024", "2024-01-01", "2024-12-31", "2024 年"),
    ("2026-03-05", "2026-03-05", "2026-03-05", "2026-03-05"),
    ("2026-03-01..2026-03-10", "2026-03-01", "2026-03-10", "2026-03-01 至 2026-03-10"),
    (" 30D ", "2026-02-19", "2026-03-20", "最近 30 天"),
])
def test_periods_people_type(text, first, last, label):
    period = parse_period(text, TODAY, TZ)
    assert period.to_dict()["start"] == first and period.to_dict()["end"] == last and period.label == label


def test_a_period_starts_at_local_midnight():
    period = parse_period("2026-03", TODAY, TZ)
    assert period.start_at == datetime(2026, 3, 1, tzinfo=TZ)
    assert period.start_at.utcoffset().total_seconds() == 8 * 3600 and period.days == 31


@pytest.mark.parametrize("text", ["last week", "2026-13", "2026-02-30", "0d", "2026-03-10..2026-03-01",
                                  "99999d", "2026-03-01..", "'; DROP TABLE orders; --"])
def test_bad_periods_are_refused_with_the_accepted_forms(text):
    with pytest.raises(InvalidInput) as caught:
        parse_period(text, TODAY, TZ)
    assert "时间段" in caught.value.message or "天数" in caught.value.message


@pytest.mark.parametrize("text", ["0001-01", "0001-01-01", "9999-12-31", "9999-12", "9999", "0001",
                                  "0001-01-01..2026-03-01", "2026-03-01..9999-12-31", "1999-12-31", "2100-01"])
def test_periods_outside_the_years_orders_can_have_are_refused(text):
    """The first and last days Python and both databases can hold used to end in an OverflowError (a 500)."""
    with pytest.raises(InvalidInput) as caught:
        parse_period(text, TODAY, TZ)
    assert "2000-01-01" in caught.value.message and "2099-12-31" in caught.value.message


def test_the_first_and_last_days_of_the_range_are_accepted():
    assert parse_period("2000-01-01", TODAY, TZ).start_at == datetime(2000, 1, 1, tzinfo=TZ)
    assert parse_period("2099-12", TODAY, TZ).to_dict()["end"] == "2099-12-31"


@pytest.mark.parametrize("seconds, shown", [(None, "—"), (600, "10 分钟"), (5400, "1.5 小时"),
                                            (3 * 86400, "3.0 天")])
def test_durations_read_naturally(seconds, shown):
    assert format_duration(seconds) == shown


def test_an_empty_spread_shows_dashes():
    assert Spread(0, None, None).to_dict() == {"count": 0, "median_seconds": None, "p90_seconds": None,
                                              "median_display": "—", "p90_display": "—"}
