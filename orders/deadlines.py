"""Deadlines: accept within hours (一小时介入), resolve within days, optionally counting working days."""
from __future__ import annotations

from datetime import date, datetime, timedelta

from orders.clock import SHANGHAI
from orders.config import Settings
from orders.taxonomy import Taxonomy


class DeadlinePolicy:
    def __init__(self, settings: Settings, taxonomy: Taxonomy) -> None:
        self._settings = settings
        self._taxonomy = taxonomy
        self._holidays = {date.fromisoformat(day) for day in settings.deadlines.holidays}

    def _spec(self, urgency: str):
        return self._taxonomy.urgencies.get(urgency) or self._taxonomy.urgencies["操心事"]

    def accept_deadline(self, start: datetime, urgency: str) -> datetime:
        return start + timedelta(hours=self._spec(urgency).accept_hours)

    def resolve_days(self, urgency: str) -> float:
        override = self._settings.deadlines.resolve_days_override(urgency)
        return override if override is not None else self._spec(urgency).resolve_days

    def resolve_deadline(self, start: datetime, urgency: str) -> datetime:
        return self.add_days(start, self.resolve_days(urgency))

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
