"""Urgent reports (十分钟报告制) reach whoever the township's roster has on duty, else its supervisors. When nobody can
be told, the resident hears so — call 110/119/120 and the township's duty phone — never that someone was notified,
and the order waits, flagged, for the first staff member who opens it or acts on it.

新安镇's roster: 吴主任 (supervisor, not bound until a test binds him) weekdays 08:30–17:30; 郑网格 (grid worker,
bound as xa-grid-01) weekends 22:00–08:00. Its duty phone: 0831-7650110."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from orders import models
from orders.clock import SHANGHAI, FrozenClock
from orders.errors import NotFound
from orders.services import Actor
from orders.township import parse_township
from orders.township.apply import apply_township
from tests.integration.test_township_bot import XINAN_TEXT
from tests.integration.test_wechat_bot import START, open_door

FIRE = "东岭村有户人家厨房着火了,快来人"  # the fake classifier: danger, 应急办 (anjian)
NOBODY_TOLD = "请立即拨打 110/119/120,并联系乡镇值班电话 0831-7650110"


def shanghai(day: int, hour: int) -> datetime:
    return datetime(2026, 11, day, hour, 0, tzinfo=SHANGHAI).astimezone(timezone.utc)


TUESDAY_EVENING = shanghai(24, 20)  # nobody on the roster
SUNDAY_DAWN = shanghai(29, 7)  # Saturday's night shift: 郑网格


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
async def xinan(settings, store, clock):
    async with open_door(settings, store, clock, demo=False) as door:
        await apply_township(parse_township(XINAN_TEXT), now=START)
        door.app.ctx.orders.identity.forget()
        yield door


async def alerted(number: str) -> list[str]:
    order = await models.Order.get(number=number)
    return await models.Outbox.filter(order_id=order.id, kind="notify_urgent_report").order_by("id") \
        .values_list("recipient", flat=True)


async def submit_event(number: str) -> models.OrderEvent:
    return await models.OrderEvent.get(order__number=number, action="submit")


async def test_the_staff_member_on_duty_is_alerted_and_the_reply_says_so(xinan, clock):
    await models.Staff.filter(name="吴主任").update(openid="xa-supervisor")  # a supervisor is there, off duty
    clock.set(SUNDAY_DAWN)
    reply = await xinan.resident().says(FIRE)
    assert "已通知值班人员" in reply and "工单号 XA20261129-0001" in reply
    assert await alerted("XA20261129-0001") == ["xa-grid-01"]  # the roster's, not every supervisor
    order = await models.Order.get(number="XA20261129-0001")
    assert order.urgency == "急难事" and order.urgent_unnotified is False
    assert (await submit_event(order.number)).data["urgent_notified"] == 1


async def test_off_the_rosters_hours_every_bound_supervisor_is_alerted(xinan, clock):
    await models.Staff.filter(name="吴主任").update(openid="xa-supervisor")
    clock.set(TUESDAY_EVENING)
    submission = await xinan.app.ctx.orders.submit(openid="o_resident_1", text=FIRE)
    assert submission.urgent_notified == 1 and submission.order.urgent_unnotified is False
    assert await alerted(submission.order.number) == ["xa-supervisor"]
    plain = await xinan.app.ctx.orders.submit(openid="o_resident_1", text="村口的路灯坏了")
    assert plain.urgent_notified is None and await alerted(plain.order.number) == []


async def test_with_nobody_to_alert_the_reply_claims_no_notification_and_the_order_is_flagged(xinan, clock):
    """吴主任 is not bound and nobody is on the roster at this hour: no alert can be queued. The old reply said
    "已立即报告值班领导" all the same."""
    clock.set(TUESDAY_EVENING)
    reply = await xinan.resident().says(FIRE)
    assert NOBODY_TOLD in reply
    assert "通知" not in reply and "报告" not in reply
    number = "XA20261124-0001"
    assert await alerted(number) == []
    order = await models.Order.get(number=number)
    assert order.urgent_unnotified is True and order.state == "dispatched"
    assert (await submit_event(number)).data["urgent_notified"] == 0
    # the same through the use case the mini-program and the bot's single path call
    submission = await xinan.app.ctx.orders.submit(openid="o_resident_2", text=FIRE)
    assert submission.urgent_notified == 0 and submission.order.urgent_unnotified is True


async def test_a_flagged_order_is_attended_once_a_staff_member_opens_or_acts_on_it(xinan, clock):
    clock.set(TUESDAY_EVENING)
    orders = xinan.app.ctx.orders
    opened = (await orders.submit(openid="o_resident_1", text=FIRE)).order
    acted = (await orders.submit(openid="o_resident_2", text=FIRE)).order
    resident = Actor.of_resident(await models.Resident.get(openid="o_resident_1"))
    assert await orders.attend_urgent(opened.number, resident) is False  # the resident looking changes nothing
    with pytest.raises(NotFound):  # dispatched to 应急办 without a grid: not the grid worker's to open (scope)
        await orders.attend_urgent(opened.number, await xinan.staff("xa-grid-01"))
    assert (await models.Order.get(id=opened.id)).urgent_unnotified is True
    admin = await xinan.staff("xa-admin")
    assert await orders.attend_urgent(opened.number, admin) is True
    assert await orders.attend_urgent(opened.number, admin) is False  # once
    events = await models.OrderEvent.filter(order_id=opened.id, action="attend_urgent").values_list(
        "actor_name", "from_state", "to_state")
    assert events == [("周镇长", "dispatched", "dispatched")]
    assert (await models.Order.get(id=opened.id)).urgent_unnotified is False

    await orders.escalate(acted.number, admin, "急难事无人接报,镇里直接督办")
    assert (await models.Order.get(id=acted.id)).urgent_unnotified is False
    escalated = await models.OrderEvent.get(order_id=acted.id, action="escalate")
    assert escalated.data["urgent_attended"] is True and escalated.actor_name == "周镇长"
