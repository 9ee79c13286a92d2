"""The outbox kinds that tell the resident (bot.notifier renders each; staff kinds are "notify_<what>").

The resident hears an order's start (accepted), its progress when the department says a note is for them, a decided
extension with its new deadline, its end (survey, or invalidated with what to do instead) and, when it is merged into
another report of the same matter, that. Each travels through the outbox: within WeChat's 48-hour window as a
customer-service message, else as the notify template (the survey kinds: the survey template).
"""
from __future__ import annotations

ACCEPTED = "accepted"
SURVEY = "survey"
SURVEY_REMINDER = "survey_reminder"
RESIDENT_PROGRESS = "resident_progress"  # a department's progress note with notify_resident
EXTENSION_DECIDED = "extension_decided"  # an approved extension: the new deadline (the department: notify_…)
RESIDENT_INVALIDATED = "invalidated"  # 不予受理 with the reason in plain words (the stored name predates this list)
RESIDENT_MERGED = "resident_merged"  # merged into another report of the same matter (the merge use case's notice)


def told_resident(action: str, data: dict | None) -> bool:
    """Whether an order event is for the resident's eyes as far as notes go: a department's progress note only when
    it said so (notify_resident; notes written before there was a choice stay internal). Other events: yes."""
    if action != "progress":
        return True
    return bool((data or {}).get("notify_resident"))
