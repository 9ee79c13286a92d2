"""Personal data in the text residents and staff write: one redaction, one rule for who reads it as written.

Personal data here is what lets someone reach or identify a person: mobile and landline numbers, ID card numbers
(身份证, 18 digits or the old 15) and bank card numbers. Order numbers, dates, times, amounts, counts and house
numbers are not, and `redact` leaves them alone. Everything that leaves the system goes through `redact` unless
`sees_personal_data` says the reader handles the order: API views, staff notifications, statistics, exports, logs.

Pure Python, no I/O: the doors, the statistics and the purge all import it.
"""
from __future__ import annotations

import logging
import re
from typing import Any, Protocol

from orders.lifecycle import Role

MASK = "****"

# Look-alikes people type on a Chinese keyboard, one character each, so positions in the text stay the same.
_PLAIN = str.maketrans({
    **{chr(0xFF10 + i): str(i) for i in range(10)},  # full-width digits
    "＋": "+", "－": "-", "（": "(", "）": ")", "．": ".", "Ｘ": "X", "ｘ": "x",
    "\u3000": " ", "\u00a0": " ", "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-",
    "\u2212": "-",
})

_LOOKALIKES = re.compile("[" + "".join(re.escape(chr(code)) for code in _PLAIN) + "]")

_SEP = r"(?: ?- ?|[ .])"  # 139-1234-5678, 139 1234 5678, 139.1234.5678
_DAY = r"(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"  # an ID number's date of birth
_LOCAL_REST = rf"\d{{2,3}}{_SEP}?\d{{4}}"  # a landline's own 7 or 8 digits, after the first
# YK20261124-0001 is an order number: neither its digits nor the counter after its dash start a card or a landline
_NOT_IN_CODE = r"(?<![A-Za-z])(?<!\d-)"

# Groups of digits are split the same way throughout (139-1234-5678): two numbers written next to each other
# ("YK20261124-0001 2026-03-01") do not make one.
_NUMBERS = re.compile(
    r"(?=[\d+(])(?<!\d)(?:"  # the lookahead first: most positions are turned away at once
    # 身份证: 6-digit region, date of birth, 3 digits and a check digit (X); sometimes written 6-8-4.
    rf"{_NOT_IN_CODE}(?P<id18>[1-9]\d{{5}}(?P<id_sep>[ -]?){_DAY}(?P=id_sep)\d{{3}}[0-9Xx])"
    rf"|{_NOT_IN_CODE}(?P<id15>[1-9]\d{{5}}\d{{2}}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{{3}})"
    # bank cards: 16 to 19 digits, whole or in groups of four
    rf"|{_NOT_IN_CODE}(?P<card>[1-9]\d{{3}}(?P<card_sep>[ -]?)\d{{4}}(?P=card_sep)\d{{4}}(?P=card_sep)\d{{4}}"
    r"(?:(?P=card_sep)\d{1,3})?)"
    # mobiles, with +86 / 0086 / (86) in front or not, grouped 3-4-4, 4-3-4 or 3-8; a letter may come first
    # (Tel13812345678)
    r"|(?P<cc>(?:\+|00) ?86 ?-? ?|\(\+?86\) ?|86[ -]?)?"
    rf"(?P<mobile>1[3-9]\d(?:(?P<m_sep>{_SEP}?)\d{{4}}(?P=m_sep)\d{{4}}|{_SEP}\d{{8}})"
    rf"|1[3-9]\d{{2}}(?P<m_sep2>{_SEP})\d{{3}}(?P=m_sep2)\d{{4}})"
    # landlines with their area code (区号): 0871-1234567, (0871)1234567, 010 1234 5678
    rf"|{_NOT_IN_CODE}(?P<area>\(0(?:10|2\d|[3-9]\d{{2}})\)|0(?:10|2\d|[3-9]\d{{2}}))(?P<area_sep> ?- ?| )?"
    rf"(?P<local>[1-9]{_LOCAL_REST})"
    r")(?![0-9A-Za-z])"
)
# A local number without its area code, when the words say it is one (电话:5123456). A second pass, once the
# numbers above are masked: the words come first in the text and would otherwise take the start of a longer number.
_SAID_LOCAL = re.compile(
    rf"(?P<word>电话|座机|固话|手机|联系方式|号码|{_NOT_IN_CODE}[Tt][Ee][Ll])"
    rf"(?P<word_sep>[::是为号 ]{{0,3}})(?<!\d)(?P<word_local>[2-9]{_LOCAL_REST})(?![0-9A-Za-z])"
)


# Every number masked has at least seven digits, close together: a text without them is returned as it is.
_SEVEN_DIGITS = re.compile(r"[0-9０-９](?:[^0-9０-９]{0,3}[0-9０-９]){6}")


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit() or ch in "Xx")


def _masked(match: re.Match[str], original: str) -> str:
    def written(group: str) -> str:  # the text as the person wrote it (the match ran on the plain copy)
        start, end = match.span(group)
        return original[start:end]

    groups = match.groupdict()
    if groups.get("word_local"):
        return written("word") + written("word_sep") + MASK + _digits(match["word_local"])[4:]
    if match["mobile"]:
        digits = _digits(match["mobile"])
        return (written("cc") if match["cc"] else "") + digits[:3] + MASK + digits[-4:]
    if match["local"]:
        separator = written("area_sep") if match["area_sep"] else "" if match["area"].startswith("(") else "-"
        return written("area") + separator + MASK + _digits(match["local"])[4:]
    digits = _digits(match[0])  # ID and card numbers: the first and last four, enough to tell two apart
    return digits[:4] + "*" * (len(digits) - 8) + digits[-4:]


def redact(text: str | None) -> str | None:
    """The text with every phone, ID card and bank card number masked (138****5678); None stays None."""
    if not text or _SEVEN_DIGITS.search(text) is None:
        return text  # most texts: nothing to look for
    return _substitute(_SAID_LOCAL, _substitute(_NUMBERS, text))


def _substitute(pattern: re.Pattern[str], text: str) -> str:
    plain = text.translate(_PLAIN) if _LOOKALIKES.search(text) else text
    pieces, last = [], 0
    for match in pattern.finditer(plain):
        pieces += [text[last:match.start()], _masked(match, text)]
        last = match.end()
    return "".join(pieces) + text[last:] if pieces else text


def phone_numbers(text: str | None) -> list[str]:
    """The phone numbers in a text, found as `redact` finds them: mobiles as their 11 digits, landlines with their
    area code (0871-1234567). ID and bank card numbers are not phone numbers."""
    if not text or _SEVEN_DIGITS.search(text) is None:
        return []
    plain = text.translate(_PLAIN) if _LOOKALIKES.search(text) else text
    found = []
    for match in _NUMBERS.finditer(plain):
        if match["mobile"]:
            found.append(_digits(match["mobile"]))
        elif match["local"]:
            found.append(f"{_digits(match['area'])}-{_digits(match['local'])}")
    return found


def redact_all(value: Any) -> Any:
    """Every string inside a JSON-like value (an event's data, an outbox payload) redacted; the rest as it is."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_all(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_all(item) for item in value]
    return value


# ------------------------------------------------------------------------------------------ who reads what
class Reader(Protocol):
    role: Role
    id: int | None
    department_id: int | None


class OrderLike(Protocol):
    resident_id: int | None
    department_id: int | None


def sees_personal_data(reader: Reader, order: OrderLike, *, opened: bool = True) -> bool:
    """Who reads an order's text as written: the resident who wrote it; the department handling it and the
    supervisors, because they must call back — when they open the order (`opened`), which is recorded; lists show
    them a masked excerpt. Grid workers and admins (they route orders and manage accounts), other departments,
    dashboards, statistics and WeChat notifications see it masked."""
    if not opened and reader.role != Role.RESIDENT:
        return False
    match reader.role:
        case Role.RESIDENT:
            return order.resident_id is not None and order.resident_id == reader.id
        case Role.SUPERVISOR:
            return True
        case Role.DEPT_STAFF:
            return order.department_id is not None and order.department_id == reader.department_id
        case _:
            return False


def is_recorded_access(reader: Reader, order: OrderLike) -> bool:
    """Staff reading an order unmasked leave a record (a resident reading their own order does not)."""
    return reader.role != Role.RESIDENT and sees_personal_data(reader, order)


def text_for(reader: Reader, order: OrderLike, text: str | None) -> str | None:
    return text if sees_personal_data(reader, order) else redact(text)


# ------------------------------------------------------------------------------------------ logs
class RedactingFilter(logging.Filter):
    """Log records leave with personal data masked: the message is rendered with its arguments, then redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed call: logging reports it itself
            return True
        record.msg, record.args = redact(message), None
        return True
