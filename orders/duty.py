"""The duty roster (the township file's [[duty]], table duty_shift): who is on duty at a moment.

Urgent reports go to the staff on duty now (else every supervisor): a shift is its weekdays and its hours in
Asia/Shanghai; one whose end comes before its start runs past midnight into the next day, so Saturday's "22:00-08:00"
still holds at 07:59 on Sunday; "24:00" ends the day.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from orders.clock import SHANGHAI

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def minute_of_day(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


@dataclass(frozen=True)
class Shift:
    days: tuple[str, ...]
    starts: str  # "08:00"
    ends: str  # "20:00"; before starts: past midnight

    def covers(self, moment: datetime) -> bool:
        local = moment.astimezone(SHANGHAI)
        today, yesterday = WEEKDAYS[local.weekday()], WEEKDAYS[(local.weekday() - 1) % 7]
        now = local.hour * 60 + local.minute + local.second / 60
        start, end = minute_of_day(self.starts), minute_of_day(self.ends)
        if start < end:
            return today in self.days and start <= now < end
        return (today in self.days and now >= start) or (yesterday in self.days and now < end)


def on_duty(roster: Iterable[tuple[str, Shift]], moment: datetime) -> list[str]:
    """The openids (or any keys) whose shift covers `moment`, each once, in the roster's order."""
    return list(dict.fromkeys(who for who, shift in roster if shift.covers(moment)))
