"""Deadlines: accept within hours (一小时介入), resolve within days, optionally counting working days.

Disputes (矛盾纠纷: 平安建设 routed to 司法所) follow 三级调解 instead of the urgency's resolve days: the grid
mediates until the first of settings.deadlines.mediation_days (default 7), the 村委 until the second (15), the
乡镇 until the last (30), all counted from dispatch; the last one is the dispute's resolve deadline.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta

from orders.clock import SHANGHAI
from orders.config import ConfigError, Settings
from orders.lifecycle import ESCALATION_LEVELS
from orders.taxonomy import Taxonomy

DISPUTE_CATEGORY = "平安建设"
DISPUTE_DEPARTMENT = "sifasuo"


class DeadlinePolicy:
    def __init__(self, settings: Settings, taxonomy: Taxonomy) -> None:
        self._settings = settings
        self._taxonomy = taxonomy
        try:
            self._holidays = {date.fromisoformat(day) for day in settings.deadlines.holidays}
        except ValueError as exc:
            raise ConfigError(f"config key deadlines.holidays: expected dates like 2026-10-01 ({exc})") from None
        self.mediation_days = tuple(settings.deadlines.mediation_days)
        steps = self.mediation_days
        if len(steps) != len(ESCALATION_LEVELS) or any(d <= 0 for d in steps) or list(steps) != sorted(set(steps)):
            raise ConfigError(
                f"config key deadlines.mediation_days: expected {len(ESCALATION_LEVELS)} increasing positive "
                f"day counts (村(网格), 村委, 乡镇), got {list(steps)}"
            )

    def _spec(self, urgency: str):
        return self._taxonomy.urgencies.get(urgency) or self._taxonomy.urgencies["操心事"]

    def accept_deadline(self, start: datetime, urgency: str) -> datetime:
        return start + timedelta(hours=self._spec(urgency).accept_hours)

    def resolve_days(self, urgency: str) -> float:
        override = self._settings.deadlines.resolve_days_override(urgency)
        return override if override is not None else self._spec(urgency).resolve_days

    def resolve_deadline(self, start: datetime, urgency: str, dispute: bool = False) -> datetime:
        if dispute:
            return self.add_days(start, self.mediation_days[-1])
        return self.add_days(start, self.resolve_days(urgency))

    @staticmethod
    def is_dispute(category: str | None, department_code: str | None) -> bool:
        return category == DISPUTE_CATEGORY and department_code == DISPUTE_DEPARTMENT

    def mediation_deadlines(self, start: datetime) -> list[datetime]:
        """When each level's mediation time runs out: [grid → 村委, 村委 → 乡镇, 乡镇 (overdue)]."""
        return [self.add_days(start, days) for days in self.mediation_days]

    def add_days(self, start: datetime, days: float) -> datetime:
        if not self._settings.deadlines.working_days or days < 1:
            return start + timedelta(days=days)
        moment = start.astimezone(SHANGHAI)
        whole = int(days)
        while whole > 0:
            moment += timedelta(days=1)
            if self.is_working_day(moment.date()):
                whole -= 1
        return (moment + timedelta(days=days - int(days))).astimezone(start.tzinfo)

    def is_working_day(self, day: date) -> bool:
        return day.weekday() < 5 and day not in self._holidays
