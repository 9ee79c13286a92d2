"""Staff bind the official account by sending it "绑定 <邀请码>" (the code `sidan staff invite` or an admin gave them);
from then on their notices arrive there as template messages. Reading the message and the replies, pure like
bot.dialog; bot.conversation runs orders.invitations.bind_with_invitation.

Only "绑定" alone or followed by something shaped like a code is taken for a binding: "绑定银行卡被骗了" is a report.
"""
from __future__ import annotations

import re
import unicodedata

from orders.township.spec import ROLE_NAMES

BIND_WORD = "绑定"
_CODE_WORDS = ("邀请码", "码")
_SEPARATORS = " \t\n:,.;-—~!?"  # after NFKC: full-width punctuation is half-width
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 \-]*$")
EXAMPLE = "绑定 ABCD2345"


def bind_code(text: str) -> str | None:
    """The invitation code of a binding message ("" when it has none: "绑定"); None when the text is not one."""
    cleaned = unicodedata.normalize("NFKC", text or "").strip()
    if not cleaned.startswith(BIND_WORD):
        return None
    rest = cleaned[len(BIND_WORD):].strip(_SEPARATORS)
    for word in _CODE_WORDS:
        if rest.startswith(word):
            rest = rest[len(word):].strip(_SEPARATORS)
            break
    if not rest:
        return ""
    return rest if _CODE.match(rest) else None


def needs_code_reply() -> str:
    return (f"请发送“绑定”加上管理员发给您的邀请码,例如“{EXAMPLE}”。\n"
            "(这是工作人员绑定公众号用的;群众反映问题,直接用一句话说清什么事、在哪里即可。)")


def refused_reply(reason: str) -> str:
    """The use case's refusal (orders.invitations: it names nobody), and what a resident who typed it should do."""
    return (f"绑定没有成功:{reason.rstrip('。')}。\n"
            "(这是工作人员绑定公众号用的;群众反映问题,直接用一句话说清什么事、在哪里即可。)")


def bound_reply(name: str, role: str, where: str | None) -> str:
    who = f"{ROLE_NAMES.get(role, role)} {name}" + (f"({where})" if where else "")
    return f"绑定成功,{who}。今后您将在公众号收到工单通知,点开通知即可查看工单。"
