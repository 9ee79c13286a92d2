"""A text that reads as an addition to the resident's last report ("对了,灯杆在村委会门口") becomes a note on that
order (event resident_note), not a new order.

Conservative on purpose: a missed addition is a second order a grid worker can close as a duplicate; a swallowed
request is a matter nobody hears of. So a text is taken as an addition only when all of these hold:
- it opens the way an afterthought does (对了, 还有, 另外, 忘了说, 顺便说一下, …) and is short (ADDITION_CHARS);
- the same resident's last still-open order was submitted within bot.addition_minutes (config; 0: never);
- the router, asked about the whole text, sees no danger in it and no request of its own elsewhere: it is screened as
  no standalone request, or it goes to the same department as that order, or the router is not confident of another.

It is decided when the message is handled, after the intake's commit of the earlier report (the resident's messages
are handled one at a time), and outside the intake batch: only texts with such an opener take this path.
"""
from __future__ import annotations

import re
import unicodedata
from typing import Any

ADDITION_CHARS = 60  # longer than this, the text tells a matter of its own
_SEPARATORS = r"[\s,，.。、:：;；!！~～-]"
# Openers that say "one more thing" by themselves, and those that do only before a pause ("还有," — not "还有人…")
_OPENER = re.compile(
    r"^(?:(?:对了|还有就是|忘了说|忘说了|刚才忘了说|顺便说一下|顺便说下|再说一下|再说一句|补一句|还要说一下)"
    rf"{_SEPARATORS}*|(?:还有|另外|顺便){_SEPARATORS}+)")


def addition_of(text: str) -> str | None:
    """The words the resident adds ("灯杆在村委会门口"), when the text opens as an afterthought and is short."""
    source = unicodedata.normalize("NFKC", text or "").strip()
    opener = _OPENER.match(source)
    if opener is None:
        return None
    rest = source[opener.end():].strip()
    if not rest or len(source) > ADDITION_CHARS:
        return None
    return rest


def belongs_to(prediction: Any, department: str | None, most_urgent: str, threshold: float) -> bool:
    """Whether the router's reading of the text lets it join an order of `department` (its code)."""
    if getattr(prediction, "danger", False) or getattr(prediction, "urgency", None) == most_urgent:
        return False  # an emergency is never folded into an earlier report
    if not getattr(prediction, "request", True):
        return True  # no standalone request: it only makes sense with the order before it
    predicted = getattr(prediction, "department", None)
    return predicted is None or predicted == department or getattr(prediction, "confidence", 0.0) < threshold


def added_reply(number: str, note: str) -> str:
    shown = note if len(note) <= 30 else note[:29] + "…"
    return (f"已把这条补充到您刚才的工单 {number}:“{shown}”。处理这件事的工作人员会看到。\n"
            "如果这是另一件事,请直接描述那件事(不用“对了”“另外”开头)再发一次。")
