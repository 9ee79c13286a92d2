"""Deadlines and the escalation ladder, without a database: DeadlinePolicy and sweep.assess()."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from orders.clock import SHANGHAI
from orders.config import ConfigError
from orders.deadlines import DeadlinePolicy
from orders.sweep import assess
from orders.taxonomy import load_taxonomy
from tests.support import make_settings

FRIDAY_EVENING = datetime(2026, 11, 27, 18, 0, tzinfo=SHANGHAI)


def policy(**deadlines) -> DeadlinePolicy:
    settings = make_settings("sqlite://:memory:")
    if deadlines:
        settings = settings.with_overrides(deadlines=deadlines)
    return DeadlinePolicy(settings, load_taxonomy())


def test_accept_within_one_hour_and_resolve_days_by_urgency():
    rules = policy()
    start = datetime(2026, 11, 24, 9, 0, tzinfo=SHANGHAI)
    assert rules.accept_deadline(start, "操心事") == start + timedelta(hours=1)
    assert rules.resolve_deadline(start, "急难事") == start + timedelta(days=1)
    assert rules.resolve_deadline(start, "操心事") == start + timedelta(days=3)
    assert rules.resolve_deadline(start, "期盼事") == start + timedelta(days=30)


def test_config_overrides_an_urgency_resolve_days():
    rules = policy(**{"急难事": 0.5, "烦心事": 10})
    start = datetime(2026, 11, 24, 9, 0, tzinfo=SHANGHAI)
    assert rules.resolve_deadline(start, "急难事") == start + timedelta(hours=12)
    assert rules.resolve_deadline(start, "烦心事") == start + timedelta(days=10)
    assert rules.resolve_deadline(start, "操心事") == start + timedelta(days=3)  # untouched


def test_working_days_skip_weekends_and_holidays_in_shanghai_time():
    rules = policy(working_days=True, holidays=["2026-11-30"])
    # Friday 18:00 in Shanghai + 3 working days: Mon 30 is a holiday, so Tue, Wed, Thu.
    assert rules.resolve_deadline(FRIDAY_EVENING, "操心事") == datetime(2026, 12, 3, 18, 0, tzinfo=SHANGHAI)
    # The same instant written in UTC (10:00, still Friday) counts the same days.
    utc = FRIDAY_EVENING.astimezone(timezone.utc)
    assert rules.resolve_deadline(utc, "操心事") == datetime(2026, 12, 3, 18, 0, tzinfo=SHANGHAI)
    # Calendar days when working_days is off.
    assert policy().resolve_deadline(FRIDAY_EVENING, "操心事") == FRIDAY_EVENING + timedelta(days=3)


def test_a_late_friday_night_in_shanghai_is_still_friday():
    rules = policy(working_days=True)
    late = datetime(2026, 11, 27, 23, 30, tzinfo=SHANGHAI)  # 15:30 UTC: a naive UTC date would agree, 00:30 not
    assert rules.add_days(late, 1) == datetime(2026, 11, 30, 23, 30, tzinfo=SHANGHAI)  # Monday


def test_disputes_get_the_three_mediation_deadlines():
    rules = policy()
    start = datetime(2026, 11, 24, 9, 0, tzinfo=SHANGHAI)
    assert rules.is_dispute("平安建设", "sifasuo")
    assert not rules.is_dispute("平安建设", "paichusuo") and not rules.is_dispute("社会民生", "sifasuo")
    assert rules.mediation_deadlines(start) == [start + timedelta(days=d) for d in (7, 15, 30)]
    assert rules.resolve_deadline(start, "操心事", dispute=True) == start + timedelta(days=30)
    assert policy(mediation_days=[3, 5, 9]).resolve_deadline(start, "期盼事", dispute=True) == start + timedelta(9)


@pytest.mark.parametrize("days", [[7, 15], [7, 7, 30], [15, 7, 30], [0, 15, 30]])
def test_bad_mediation_days_are_refused_naming_the_key(days):
    with pytest.raises(ConfigError, match="deadlines.mediation_days"):
        policy(mediation_days=days)


def test_a_malformed_holiday_is_refused_naming_the_key():
    with pytest.raises(ConfigError, match="deadlines.holidays"):
        policy(holidays=["2026-13-01"])


# ---------------------------------------------------------------- the ladder (sweep.assess)
T0 = datetime(2026, 11, 24, 9, 0, tzinfo=SHANGHAI)


def order(state="dispatched", level=0, overdue=False, accepted_at=None, dispute=False, **more):
    rules = policy()
    fields = dict(
        state=state, escalation_level=level, overdue=overdue, dispatched_at=T0, reopened_at=None,
        accept_deadline=T0 + timedelta(hours=1),
        resolve_deadline=rules.resolve_deadline(T0, "操心事", dispute=dispute), accepted_at=accepted_at,
    )
    fields.update(more)
    return SimpleNamespace(**fields)


def at(**delta) -> datetime:
    return T0 + timedelta(**delta)


def test_nothing_is_due_within_the_deadlines():
    due = assess(order(), at(minutes=59), policy(), dispute=False)
    assert (due.level, due.overdue, due.steps) == (0, False, ())


def test_not_accepted_within_an_hour_is_overdue_and_goes_to_the_village_committee():
    due = assess(order(), at(minutes=61), policy(), dispute=False)
    assert due.level == 1 and due.overdue
    assert "接单时限" in due.steps[0] and "11-24 10:00" in due.steps[0]  # the deadline in Shanghai time


def test_accepted_late_still_counts_a_step_but_is_no_longer_overdue():
    late = order(state="accepted", accepted_at=at(hours=2))
    due = assess(late, at(hours=3), policy(), dispute=False)
    assert due.level == 1 and not due.overdue and "才接单" in due.steps[0]
    on_time = order(state="accepted", accepted_at=at(minutes=30))
    assert assess(on_time, at(hours=3), policy(), dispute=False).level == 0


def test_ordinary_orders_climb_one_level_per_missed_checkpoint():
    accepted = order(state="accepted", accepted_at=at(minutes=30))
    rules = policy()
    assert assess(accepted, at(days=3, minutes=-1), rules, False).level == 0
    past_resolve = assess(accepted, at(days=3, minutes=1), rules, False)
    assert past_resolve.level == 1 and past_resolve.overdue and "办结时限" in past_resolve.steps[0]
    assert assess(accepted, at(days=6, minutes=-1), rules, False).level == 1
    twice = assess(accepted, at(days=6, minutes=1), rules, False)
    assert twice.level == 2 and "一倍" in twice.steps[1]
    assert assess(accepted, at(days=60), rules, False).level == 2  # 乡镇 is the top


def test_accepted_late_and_resolved_late_reaches_the_township():
    late = order(state="accepted", accepted_at=at(hours=2), level=1, overdue=True)
    due = assess(late, at(days=3, minutes=1), policy(), dispute=False)
    assert due.level == 2 and "办结时限" in due.steps[1]


def test_the_level_never_goes_down():
    raised_by_hand = order(state="accepted", accepted_at=at(minutes=5), level=2)
    assert assess(raised_by_hand, at(hours=2), policy(), dispute=False).level == 2


def test_a_reopened_order_counts_from_its_reopening():
    reopened = order(state="reopened", reopened_at=at(days=10), accept_deadline=at(days=10, hours=1),
                     resolve_deadline=at(days=13))
    assert assess(reopened, at(days=10, minutes=30), policy(), dispute=False).level == 0
    assert assess(reopened, at(days=10, minutes=61), policy(), dispute=False).overdue


def test_disputes_follow_seven_fifteen_thirty_days():
    rules = policy()
    dispute = order(state="accepted", accepted_at=at(minutes=10), dispute=True)
    assert assess(dispute, at(days=6), rules, True).level == 0
    seven = assess(dispute, at(days=7, minutes=1), rules, True)
    assert seven.level == 1 and not seven.overdue and "村(网格)调解满 7 天" in seven.steps[0]
    fifteen = assess(dispute, at(days=15, minutes=1), rules, True)
    assert fifteen.level == 2 and not fifteen.overdue and "村委调解满 15 天" in fifteen.steps[1]
    thirty = assess(dispute, at(days=30, minutes=1), rules, True)
    assert thirty.level == 2 and thirty.overdue and "调解时限" in thirty.overdue_reason


def test_an_unaccepted_dispute_is_overdue_without_skipping_the_mediation_ladder():
    due = assess(order(dispute=True), at(hours=2), policy(), dispute=True)
    assert due.overdue and due.level == 0 and "接单时限" in due.overdue_reason


def test_custom_mediation_days_move_the_steps():
    rules = policy(mediation_days=[2, 4, 6])
    dispute = order(state="accepted", accepted_at=at(minutes=10),
                    resolve_deadline=rules.resolve_deadline(T0, "操心事", dispute=True))
    assert assess(dispute, at(days=2, minutes=1), rules, True).level == 1
    assert assess(dispute, at(days=4, minutes=1), rules, True).level == 2
    assert assess(dispute, at(days=6, minutes=1), rules, True).overdue
