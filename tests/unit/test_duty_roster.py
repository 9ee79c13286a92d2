"""Who is on duty at a moment (orders.duty): a shift's weekdays and hours in Asia/Shanghai, past midnight when its
end comes before its start, 24:00 the end of the day."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from orders.clock import SHANGHAI
from orders.duty import Shift, on_duty

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
DAY_SHIFT = Shift(WEEKDAYS, "08:30", "17:30")
WEEKEND_NIGHTS = Shift(("sat", "sun"), "22:00", "08:00")


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """A moment of the week of 2026-11-23 (Monday 23 … Sunday 29) in Shanghai, given in UTC as the clock gives it."""
    return datetime(2026, 11, day, hour, minute, second, tzinfo=SHANGHAI).astimezone(timezone.utc)


@pytest.mark.parametrize(("moment", "covered"), [
    (at(24, 8, 29, 59), False),  # Tuesday, just before
    (at(24, 8, 30), True),
    (at(24, 17, 29, 59), True),
    (at(24, 17, 30), False),  # the end is not part of the shift
    (at(28, 10, 0), False),  # Saturday
])
def test_a_day_shift_holds_on_its_weekdays_between_its_hours(moment, covered):
    assert DAY_SHIFT.covers(moment) is covered


@pytest.mark.parametrize(("moment", "covered"), [
    (at(27, 23, 0), False),  # Friday night: not a day of the shift
    (at(28, 21, 59), False),  # Saturday before it starts
    (at(28, 22, 0), True),
    (at(29, 0, 30), True),  # past midnight: still Saturday's shift
    (at(29, 7, 59, 59), True),
    (at(29, 8, 0), False),
    (at(29, 23, 0), True),  # Sunday's own night
    (at(30, 2, 0), True),  # Monday 02:00 belongs to Sunday's shift
    (at(30, 8, 0), False),
    (at(30, 23, 0), False),  # Monday night: Monday is not a day of the shift
])
def test_a_night_shift_runs_past_midnight_into_the_next_day(moment, covered):
    assert WEEKEND_NIGHTS.covers(moment) is covered


def test_hours_are_the_townships_whatever_the_clocks_zone():
    # 01:00 UTC on Tuesday is 09:00 in Shanghai: on duty; 10:00 UTC is 18:00 there: not
    assert DAY_SHIFT.covers(datetime(2026, 11, 24, 1, 0, tzinfo=timezone.utc))
    assert not DAY_SHIFT.covers(datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc))


def test_24_00_ends_the_day():
    evening = Shift(("tue",), "18:00", "24:00")
    assert evening.covers(at(24, 23, 59, 59)) and not evening.covers(at(25, 0, 0))


def test_on_duty_names_each_person_once_in_the_rosters_order():
    roster = [("wu", DAY_SHIFT), ("zheng", WEEKEND_NIGHTS), ("wu", Shift(("tue",), "12:00", "13:00")),
              ("qian", Shift(("tue",), "09:00", "10:00"))]
    assert on_duty(roster, at(24, 12, 30)) == ["wu"]
    assert on_duty(roster, at(24, 9, 30)) == ["wu", "qian"]
    assert on_duty(roster, at(29, 3, 0)) == ["zheng"]
    assert on_duty(roster, at(24, 20, 0)) == []
