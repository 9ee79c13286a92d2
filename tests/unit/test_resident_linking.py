"""The bot's reading of a resident's two doors (pure): "绑定小程序" asks for a link code, a message that only leaves
a phone number is a contact phone, and the phone numbers found in a text are the ones the redaction masks."""
from __future__ import annotations

import pytest

from bot.dialog import Kind, understand
from bot.linking import contact_phone_of, contact_saved_reply, is_link_request, link_code_reply
from orders.privacy import phone_numbers
from orders.residents import contact_phone_in


@pytest.mark.parametrize("text", ["绑定小程序", "关联", "关联小程序!", " 绑定 小程序 ", "关联码", "小程序绑定"])
def test_asking_for_a_link_code(text):
    assert is_link_request(text) and understand(text).kind == Kind.LINK


@pytest.mark.parametrize("text", ["绑定 ABCD2345", "绑定"])
def test_a_staff_binding_stays_a_binding(text):
    assert understand(text).kind == Kind.BIND


@pytest.mark.parametrize("text", ["绑定银行卡被骗了", "小程序打不开,怎么关联不上", "村里关联的事情"])
def test_reports_that_mention_the_words_are_reports(text):
    assert not is_link_request(text) and understand(text).kind == Kind.NEW_REQUEST


@pytest.mark.parametrize("text, phone", [
    ("我的电话 139 1234 5678", "13912345678"), ("13912345678", "13912345678"), ("电话:0871-1234567", "0871-1234567"),
    ("我的手机号是１３９１２３４５６７８", "13912345678"), ("联系方式 +86 139-1234-5678", "13912345678"),
    ("我的电话是13912345678,有事打", "13912345678"),
])
def test_a_message_that_only_leaves_a_number_is_a_contact_phone(text, phone):
    assert contact_phone_of(text) == phone
    intent = understand(text)
    assert (intent.kind, intent.phone) == (Kind.CONTACT, phone)


@pytest.mark.parametrize("text", ["村口路灯坏了 电话13912345678", "13912345678 和 13800001111",
                                  "身份证 110101199003071234", "YK20261124-0001", "我的电话坏了"])
def test_a_report_with_a_number_or_no_phone_at_all_is_no_contact_message(text):
    assert contact_phone_of(text) is None
    assert understand(text).kind != Kind.CONTACT


def test_phone_numbers_are_those_the_redaction_masks_and_nothing_else():
    text = "路灯坏了 联系13912345678 或 (0871)1234567,身份证110101199003071234,卡号6222 0212 3456 7890,工单YK20261124-0001"
    assert phone_numbers(text) == ["13912345678", "0871-1234567"]
    assert contact_phone_in(text) == "13912345678" and contact_phone_in("路灯坏了") is None
    assert phone_numbers(None) == [] and phone_numbers("共 1234567 元") == []


def test_the_replies_say_what_to_do_and_mask_the_number():
    reply = link_code_reply("042817", 10)
    assert "042817" in reply and "10 分钟内有效" in reply and "小程序" in reply and "请勿" in reply
    assert "139****5678" in contact_saved_reply("13912345678") and "13912345678" not in contact_saved_reply(
        "13912345678")
