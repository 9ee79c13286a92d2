"""Issue #16, the WeChat account, on SQLite + in-process store and PostgreSQL + Redis: a staff member binds the
official account by sending it "绑定 <邀请码>" and from then on gets its template messages (the configured template
and field names, through the outbox to the fake WeChat API); colleagues bound only through the mini-program keep
their subscribe messages; refusals name nobody and write nothing; the menu's keys get the bot's answers."""
from __future__ import annotations

import pytest
from tortoise.transactions import in_transaction

from bot.notifier import Notifier
from bot.wechat_api import WeChatClient
from bot.wechat_menu import MENU_PATH, load_menu
from orders import models
from orders.dispatcher import ALERT_KIND, Dispatcher, Undeliverable
from orders.invitations import issue_invitation
from tests.integration.test_bot_transcripts import Absent, transcript
from tests.integration.test_wechat_bot import ALICE, START, clock, counts, open_door  # noqa: F401

PUBLIC = "https://sidan.example.gov.cn"
WU = "o_wu_official_account_00001"  # the official account's openid of 吴师傅, a new member of 村镇建设办
STAFF_TEMPLATE = {"staff_template_id": "tmpl-staff",
                  "staff_template_fields": "number=character_string2,title=thing1,detail=thing3,time=time4"}
BOUND = "绑定成功,部门工作人员 吴师傅(村镇建设办)。今后您将在公众号收到工单通知"


@pytest.fixture
async def door(settings, store, clock, fake_wechat):
    settings = settings.with_overrides(app={"public_url": PUBLIC})
    async with open_door(settings, store, clock, wechat={"api_base": fake_wechat.base_url, **STAFF_TEMPLATE}) as door:
        yield door


async def new_member(name: str, department: str = "jianshe", hours: int = 72, **fields) -> tuple[models.Staff, str]:
    """A member of the department (as the township file or an admin adds one) and their invitation code."""
    department_id = (await models.Department.get(code=department)).id
    async with in_transaction() as conn:
        staff = await models.Staff.create(name=name, role="dept_staff", department_id=department_id, using_db=conn,
                                          **fields)
        invitation = await issue_invitation(staff, now=START, hours=hours, conn=conn)
    return staff, invitation.code


async def deliver(door) -> None:
    settings = door.settings
    client = WeChatClient(settings, door.app.ctx.store)
    try:
        await Dispatcher(settings, Notifier(client, settings, door.clock), door.clock).run_until_idle()
    finally:
        await client.close()


async def bindings() -> list[tuple]:
    return [tuple(row) for row in await models.Staff.all().order_by("id").values_list("id", "openid", "oa_openid",
                                                                                         "active")]


# ---------------------------------------------------------------------------------------------- binding
async def test_a_member_binds_the_account_and_gets_its_template_while_a_mini_program_colleague_gets_subscribe(
        door, fake_wechat):
    wu, code = await new_member("吴师傅")
    await transcript(door.resident(WU), [(f"绑定 {code.lower()}", (BOUND, "点开通知即可查看工单"))])
    wu = await models.Staff.get(id=wu.id)
    assert wu.oa_openid == WU and wu.openid is None
    assert (await models.Invitation.get(code=code)).used_at == START
    assert (await counts())["orders"] == 0

    await door.resident().says("楼坝村村口的路灯坏了一个星期,晚上很黑")  # dispatched to 村镇建设办
    order = await models.Order.get(resident__openid=ALICE)
    rows = await models.Outbox.filter(kind="notify_dispatched").order_by("id")
    assert {(row.recipient, row.payload["channel"]) for row in rows} == {
        (WU, "official_account"), ("demo-dept_staff-jianshe", "miniapp")}

    await deliver(door)
    [to_wu] = fake_wechat.messages_to(WU)
    assert to_wu.path == "/cgi-bin/message/template/send"
    assert to_wu.body["template_id"] == "tmpl-staff" and to_wu.body["url"] == f"{PUBLIC}/m/orders/{order.number}"
    data = {field: value["value"] for field, value in to_wu.body["data"].items()}
    assert data == {"character_string2": order.number, "thing1": "新工单待接单",
                    "thing3": "楼坝村村口的路灯坏了一个星期,晚上很黑", "time4": "2026-11-24 16:30"}
    [to_colleague] = fake_wechat.messages_to("demo-dept_staff-jianshe")
    assert to_colleague.path == "/cgi-bin/message/subscribe/send"
    assert to_colleague.body["template_id"] == "NOTIFY_TEMPLATE"  # no subscribe template of its own configured
    assert to_colleague.body["data"]["character_string1"]["value"] == order.number


async def test_a_member_bound_in_both_apps_is_told_on_the_official_account_only(door, fake_wechat):
    clerk = await models.Staff.get(openid="demo-dept_staff-jianshe")
    async with in_transaction() as conn:
        code = (await issue_invitation(clerk, now=START, hours=1, conn=conn)).code
    reply = await door.resident("o_clerk_official_account_01").says(f"绑定:{code}")
    assert reply.startswith("绑定成功,部门工作人员 ")
    await door.resident().says("村口的路灯坏了")
    await deliver(door)
    assert len(fake_wechat.messages_to("o_clerk_official_account_01")) == 1
    assert fake_wechat.messages_to("demo-dept_staff-jianshe") == []
    assert fake_wechat.messages("/cgi-bin/message/subscribe/send") == []


async def test_refused_bindings_name_nobody_and_write_nothing(door):
    wu, code = await new_member("吴师傅", hours=1)
    zheng, _ = await new_member("郑师傅", oa_openid="o_zheng_official_account_1")
    retired, retired_code = await new_member("钱师傅", active=False)
    before = await bindings()
    invalid = ("绑定没有成功:邀请码无效、已使用或已过期,请联系管理员重新发放。", "群众反映问题", Absent("吴师傅"))
    await transcript(door.resident(WU), [
        ("绑定", ("请发送“绑定”加上管理员发给您的邀请码,例如“绑定 ABCD2345”", Absent("绑定成功"))),
        ("绑定 WRONG234", invalid),
        (f"绑定 {retired_code}", ("该工作人员账号已停用", Absent("钱师傅"))),
    ])
    # this WeChat is 郑师傅's: the code is 吴师傅's, and the refusal names neither
    await transcript(door.resident("o_zheng_official_account_1"), [
        (f"绑定 {code}", ("这个微信已绑定另一个工作人员账号,请联系管理员先停用原账号", Absent("郑师傅"), Absent("吴师傅"))),
    ])
    door.clock.advance(hours=2)  # past the invitation's hour
    await transcript(door.resident(WU), [(f"绑定 {code}", invalid)])
    assert await bindings() == before
    assert await models.Invitation.filter(used_at__isnull=False).count() == 0
    assert (await counts())["orders"] == 0 and await models.Outbox.all().count() == 0


async def test_a_used_code_binds_once_and_a_resident_guessing_one_changes_nothing(door):
    wu, code = await new_member("吴师傅")
    assert (await door.resident(WU).says(f"绑定 {code}")).startswith(BOUND)
    before = await bindings()
    await transcript(door.resident(), [
        (f"绑定 {code}", ("邀请码无效、已使用或已过期", Absent("吴师傅"), Absent("已收到您的诉求"))),
        ("绑定 ABCD2345", ("邀请码无效、已使用或已过期", Absent("已收到您的诉求"))),
        ("绑定银行卡被骗了两万块钱", ("已收到您的诉求",)),  # a report that mentions binding is still a report
    ])
    assert await bindings() == before
    assert (await counts())["orders"] == 1


async def test_a_supervisor_bound_only_to_the_official_account_is_alerted_there(door):
    await models.Staff.filter(openid="demo-supervisor").update(openid=None, oa_openid="o_supervisor_official_01")

    class Refusing:
        async def send(self, message):
            if message.kind != ALERT_KIND:
                raise Undeliverable("43004 require subscribe")

    await models.Outbox.create(kind="accepted", recipient="oGone", payload={"to": "resident", "number": "YK1"},
                               next_attempt_at=START, created_at=START)
    await Dispatcher(door.settings, Refusing(), door.clock).run_until_idle()
    alert = await models.Outbox.get(kind=ALERT_KIND)
    assert alert.recipient == "o_supervisor_official_01" and alert.payload["channel"] == "official_account"
    assert alert.status == "sent"


# ---------------------------------------------------------------------------------------------- the menu
async def test_each_key_of_the_menu_gets_the_bots_answer(door):
    menu = load_menu(MENU_PATH, public_url=PUBLIC)
    keys = [sub["key"] for button in menu["button"] for sub in [button, *button.get("sub_button", [])]
            if sub.get("type") == "click"]
    answers = {"REPORT": "请直接用文字描述您要反映的问题", "MY_ORDERS": "您还没有提交过诉求", "RATE": "没有待评价的工单",
               "HELP": "使用方法"}
    assert keys == list(answers)
    alice = door.resident()
    for key in keys:
        door.clock.advance(seconds=1)  # a click in the same second is the same event (WeChat's retry)
        assert answers[key] in await alice.event("CLICK", key), key
