"""'绑定 <邀请码>' in the dialog, without I/O: which texts are a binding (and their code), which stay reports, and
the replies."""
from __future__ import annotations

import pytest

from bot import binding
from bot.dialog import Kind, understand


@pytest.mark.parametrize("text, code", [
    ("绑定 ABCD2345", "ABCD2345"),
    ("绑定ABCD2345", "ABCD2345"),
    ("绑定：abcd-2345", "abcd-2345"),  # full-width colon; the use case normalises case and dashes
    ("  绑定 邀请码 ABCD 2345 ", "ABCD 2345"),
    ("绑定邀请码:ABCD2345", "ABCD2345"),
    ("绑定 Ｘ７Ｋ９ＱＱ２Ｍ", "X7K9QQ2M"),  # full-width letters and digits
    ("绑定", ""),
    ("绑定!", ""),
    ("绑定邀请码", ""),
])
def test_a_binding_and_its_code(text, code):
    assert binding.bind_code(text) == code
    intent = understand(text)
    assert intent.kind == Kind.BIND and intent.code == code


@pytest.mark.parametrize("text", [
    "绑定银行卡被骗了两万块钱",  # a fraud: a report, never a binding
    "绑定手机号怎么弄",
    "帮我绑定一下社保卡",
    "我要绑定",
    "解除绑定",
])
def test_texts_that_only_mention_binding_are_not_one(text):
    assert binding.bind_code(text) is None
    assert understand(text).kind != Kind.BIND


def test_the_replies_say_what_happened_and_what_to_send():
    assert "绑定 ABCD2345" in binding.needs_code_reply() and "群众反映问题" in binding.needs_code_reply()
    refused = binding.refused_reply("邀请码无效、已使用或已过期,请联系管理员重新发放")
    assert refused.startswith("绑定没有成功:邀请码无效、已使用或已过期,请联系管理员重新发放。\n")
    bound = binding.bound_reply("吴主任", "dept_staff", "村镇建设办")
    assert bound.startswith("绑定成功,部门工作人员 吴主任(村镇建设办)。") and "您将在公众号收到工单通知" in bound
    assert binding.bound_reply("周镇长", "admin", None).startswith("绑定成功,管理员 周镇长。")
