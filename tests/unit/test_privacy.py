"""orders.privacy: every common writing of a phone, ID card or bank card number is masked; order numbers, dates,
times, amounts, counts and house numbers are left as written; one rule says who reads an order unmasked."""
from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from orders.lifecycle import Role
from orders.privacy import RedactingFilter, is_recorded_access, redact, redact_all, sees_personal_data, text_for

FULL_WIDTH = str.maketrans({str(i): chr(0xFF10 + i) for i in range(10)})
# Words around a number: Chinese and punctuation, never a digit or a latin letter (they would make it a longer code).
WORDS = st.text(alphabet=st.sampled_from("路灯坏了请打我的电话村口在,。:;!(「」 这是身份证号卡"), max_size=12)
SEPARATORS = st.sampled_from([" ", "-", ".", " - ", "—", "－", "\u3000"])


def digits_of(text: str) -> str:
    return re.sub(r"[^0-9Xx]", "", text.translate({0xFF10 + i: str(i) for i in range(10)}))


# ------------------------------------------------------------------------------------------ what is masked
@st.composite
def mobiles(draw) -> tuple[str, str]:
    """(as written, its eleven digits)"""
    digits = "1" + draw(st.sampled_from("3456789")) + "".join(draw(st.lists(
        st.sampled_from("0123456789"), min_size=9, max_size=9)))
    sep = draw(SEPARATORS)
    written = draw(st.sampled_from([
        digits, f"{digits[:3]}{sep}{digits[3:7]}{sep}{digits[7:]}", f"{digits[:4]}{sep}{digits[4:7]}{sep}{digits[7:]}",
        f"{digits[:3]}{sep}{digits[3:]}",
    ]))
    prefix = draw(st.sampled_from(["", "+86", "+86 ", "+86-", "0086", "0086 ", "(+86)", "（+86）", "86-", "＋86 "]))
    if draw(st.booleans()):
        written = written.translate(FULL_WIDTH)
    return prefix + written, digits


@st.composite
def landlines(draw) -> tuple[str, str]:
    area = draw(st.sampled_from(["010", "021", "023", "0871", "0870", "0755", "0991"]))
    local = draw(st.sampled_from("23456789")) + "".join(draw(st.lists(
        st.sampled_from("0123456789"), min_size=6, max_size=7)))
    sep = draw(st.sampled_from(["-", " ", "", " - ", "—"]))
    split = f"{local[:-4]} {local[-4:]}" if draw(st.booleans()) else local
    written = draw(st.sampled_from([f"{area}{sep}{split}", f"({area}){split}", f"（{area}）{split}"]))
    return written, area + local


@st.composite
def id_numbers(draw) -> tuple[str, str]:
    region = draw(st.sampled_from("123456789")) + "".join(draw(st.lists(
        st.sampled_from("0123456789"), min_size=5, max_size=5)))
    born = draw(st.dates(min_value=date(1900, 1, 1), max_value=date(2026, 12, 31)))
    serial = "".join(draw(st.lists(st.sampled_from("0123456789"), min_size=3, max_size=3)))
    if draw(st.integers(0, 4)) == 0:  # the old 15-digit number: two-digit year, no check digit
        number = f"{region}{born:%y%m%d}{serial}"
        return number, number
    number = f"{region}{born:%Y%m%d}{serial}{draw(st.sampled_from('0123456789Xx'))}"
    written = draw(st.sampled_from([number, f"{number[:6]} {number[6:14]} {number[14:]}"]))
    return written, number


@st.composite
def bank_cards(draw) -> tuple[str, str]:
    length = draw(st.integers(16, 19))
    digits = draw(st.sampled_from("3456")) + "".join(draw(st.lists(
        st.sampled_from("0123456789"), min_size=length - 1, max_size=length - 1)))
    sep = draw(st.sampled_from(["", " ", "-"]))
    return sep.join(digits[i:i + 4] for i in range(0, length, 4)), digits


@settings(max_examples=400)
@given(before=st.tuples(WORDS, st.sampled_from(["", "电话", "电话:", "手机号", "座机 ", "Tel:", "号码是", "联系方式"])).map(
    "".join), number=st.one_of(mobiles(), landlines(), id_numbers(), bank_cards()), after=WORDS)
@example(before="电话", number=("+86 139-1234-5678", "13912345678"), after="")
@example(before="请打我电话", number=("139-1234-5678", "13912345678"), after="")  # not a local 139-1234
@example(before="", number=("139 1234 5678", "13912345678"), after="找我")
@example(before="身份证", number=("53010219900307123X", "53010219900307123X"), after="")
def test_personal_numbers_are_masked_in_any_common_writing(before, number, after):
    written, digits = number
    masked = redact(before + written + after)
    assert masked.startswith(before) and masked.endswith(after)  # only the number changes
    assert "*" in masked
    assert digits.lower() not in digits_of(masked).lower()
    assert redact(masked) == masked  # masking twice changes nothing more


def test_the_masks_keep_what_tells_two_numbers_apart():
    assert redact("电话13812345678,门牌12号") == "电话138****5678,门牌12号"
    assert redact("+86 139-1234-5678") == "+86 139****5678"
    assert redact("座机0871-1234567") == "座机0871-****567"
    assert redact("（0871）1234567") == "（0871）****567"
    assert redact("010 1234 5678") == "010 ****5678"
    assert redact("电话:5123456,找老王") == "电话:****456,找老王"  # a local number, said to be one
    assert redact("身份证 110101199003071234") == "身份证 1101**********1234"
    assert redact("卡号 6222 0212 3456 7890 123") == "卡号 6222***********0123"
    assert redact(None) is None and redact("") == ""


# ------------------------------------------------------------------------------------------ what is not
@st.composite
def innocent_texts(draw) -> str:
    """What staff and residents write that is no personal data: order numbers, dates, times, money, counts."""
    day = draw(st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)))
    moment = datetime.combine(day, datetime.min.time(), timezone(timedelta(hours=8))) + timedelta(
        minutes=draw(st.integers(0, 1439)))
    pieces = [
        f"YK{day:%Y%m%d}-{draw(st.integers(1, 9999)):04d}",
        f"{day:%Y-%m-%d}", f"{day:%Y/%m/%d}", f"{day.year}年{day.month}月{day.day}日", f"{day:%Y%m%d}",
        f"{moment:%H:%M}", f"{day:%Y-%m-%d} {moment:%H:%M}", moment.isoformat(timespec="seconds"),
        f"{draw(st.integers(0, 999_999)):,}元", f"{draw(st.integers(0, 99_999))}.{draw(st.integers(0, 99)):02d}元",
        f"{draw(st.integers(1, 99))}.{draw(st.integers(0, 9))}万元",
        f"{draw(st.integers(1, 40))}栋{draw(st.integers(1, 9))}单元{draw(st.integers(101, 3299))}室",
        f"共{draw(st.integers(1, 9999))}户", f"第{draw(st.integers(1, 999))}盏", f"{draw(st.integers(0, 100))}%",
        f"{draw(st.integers(1, 200))}号", f"{draw(st.integers(1, 30))}天", f"XJB-{draw(st.integers(1, 99)):02d}",
    ]
    chosen = draw(st.lists(st.sampled_from(pieces), min_size=1, max_size=6))
    glue = draw(st.lists(st.sampled_from([",", "。", ";", "、", " ", "至", "和", "在"]), min_size=len(chosen),
                         max_size=len(chosen)))
    return "".join(piece + sep for piece, sep in zip(chosen, glue))


@settings(max_examples=400)
@given(innocent_texts())
def test_order_numbers_dates_times_amounts_and_counts_are_left_alone(text):
    assert redact(text) == text


def test_json_like_values_are_redacted_inside_and_left_alone_outside():
    data = {"note": "已电话联系 13812345678", "photos": ["m-1"], "days": 3, "terms": ["路灯", "13812345678"],
            "resolve_deadline": "2026-03-05T10:00:00+08:00", "nested": {"reason": "卡号6222021234567890123"}}
    assert redact_all(data) == {"note": "已电话联系 138****5678", "photos": ["m-1"], "days": 3,
                                "terms": ["路灯", "138****5678"], "resolve_deadline": "2026-03-05T10:00:00+08:00",
                                "nested": {"reason": "卡号6222***********0123"}}


# ------------------------------------------------------------------------------------------ who reads what
@dataclass
class Reader:
    role: Role
    id: int | None = None
    department_id: int | None = None


@dataclass
class Order:
    resident_id: int | None = 7
    department_id: int | None = 3


@pytest.mark.parametrize(("reader", "order", "unmasked"), [
    (Reader(Role.RESIDENT, 7), Order(), True),  # the writer
    (Reader(Role.RESIDENT, 8), Order(), False),
    (Reader(Role.DEPT_STAFF, 21, department_id=3), Order(), True),  # the handling department calls back
    (Reader(Role.DEPT_STAFF, 22, department_id=4), Order(), False),
    (Reader(Role.DEPT_STAFF, 21, department_id=3), Order(department_id=None), False),  # returned: nobody's
    (Reader(Role.DEPT_STAFF, 23, department_id=None), Order(department_id=None), False),
    (Reader(Role.SUPERVISOR, 30), Order(), True),
    (Reader(Role.SUPERVISOR, 30), Order(department_id=None), True),
    (Reader(Role.GRID_WORKER, 40), Order(), False),  # routes orders, does not call back
    (Reader(Role.ADMIN, 50), Order(), False),  # manages accounts, does not handle orders
    (Reader(Role.SYSTEM), Order(), False),  # notifications, statistics
])
def test_only_the_writer_the_handling_department_and_supervisors_read_it_unmasked(reader, order, unmasked):
    text = "请打13812345678"
    assert sees_personal_data(reader, order) is unmasked
    assert text_for(reader, order, text) == (text if unmasked else "请打138****5678")
    assert is_recorded_access(reader, order) is (unmasked and reader.role != Role.RESIDENT)
    # In a list nobody but the writer reads it unmasked: opening the order is what is recorded.
    assert sees_personal_data(reader, order, opened=False) is (unmasked and reader.role == Role.RESIDENT)


def test_log_records_leave_with_personal_data_masked():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("sidan.test_privacy")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("order %s from %s, id %s", "YK20260301-0001", "139-1234-5678", "110101199003071234")
        logger.warning("no arguments: 0871-1234567")
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert lines == ["order YK20260301-0001 from 139****5678, id 1101**********1234", "no arguments: 0871-****567"]
