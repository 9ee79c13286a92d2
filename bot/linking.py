"""A resident's two doors, as the bot hears and answers them: "绑定小程序" asks for a link code that the mini-program
takes (orders.link_codes), "我的电话 139…" leaves a contact phone (orders.residents). Reading the message and the
replies, pure like bot.dialog; bot.conversation runs the use cases.
"""
from __future__ import annotations

import re
import unicodedata

from orders.privacy import phone_numbers, redact

LINK_WORDS = ("绑定小程序", "关联小程序", "小程序绑定", "小程序关联", "关联", "关联码", "小程序关联码", "绑定小程序账号",
              "关联小程序账号", "关联账号", "获取关联码", "链接小程序")
# what may stand around a phone number in a message that only leaves it ("我的电话是 139…")
_PHONE_WORDS = re.compile(r"我的|我|联系电话|联系方式|联系|电话号码|电话|手机号码|手机号|手机|号码|是|为|留个|留|请|有事|找我|联系我|打|一下|如下")
_NOT_WORDS = re.compile(r"[\W_]+")


def _plain(text: str) -> str:
    return _NOT_WORDS.sub("", unicodedata.normalize("NFKC", text or "").strip().lower())


def is_link_request(text: str) -> bool:
    """"绑定小程序", "关联" and the like: the resident asks for a link code."""
    return _plain(text) in LINK_WORDS


def contact_phone_of(text: str) -> str | None:
    """The number of a message that only leaves one ("我的电话 139 1234 5678", "13912345678"); None otherwise (a
    report with a number in it is a report: the intake keeps its number)."""
    numbers = phone_numbers(text)
    if len(numbers) != 1:
        return None
    rest = unicodedata.normalize("NFKC", text or "")
    rest = re.sub(r"[\d+\-() ]{7,}", "", rest)  # the number as written
    return numbers[0] if not _PHONE_WORDS.sub("", _plain(rest)) else None


def link_code_reply(code: str, minutes: int) -> str:
    return (f"您的小程序关联码:{code}\n"
            f"{minutes} 分钟内有效,只能用一次。请打开小程序,在“我的”里输入这个关联码,"
            "您在公众号和小程序反映的工单就能在一处查看。请勿把关联码告诉他人。")


def link_unavailable_reply() -> str:
    return "暂时无法生成关联码,请稍后再发送“绑定小程序”。"


def contact_saved_reply(phone: str) -> str:
    return f"已记下您的联系电话 {redact(phone) or phone},处理您工单的工作人员需要时会打这个电话联系您。"
