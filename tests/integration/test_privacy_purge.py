"""`sidan privacy purge` on both backends: closed orders past [privacy] purge_after_days lose their phone, ID card
and bank card numbers wherever their words are kept; open and recent orders keep theirs; each purge is an event."""
from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

from api.demo.township import load_demo_data
from orders import models
from orders.clock import SHANGHAI, FrozenClock
from orders.privacy_records import PURGE_ACTION, Purge
from orders.services import Actor, OrderService

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=SHANGHAI)
LATER = T0 + timedelta(days=40)  # the purge runs then, 30 days after: everything closed before T0 + 10 days goes
NUMBERS = ("13912345678", "110101199003071234", "08711234567", "6222021234567890123", "13812345678")


def leaks(*values) -> list[str]:
    digits = " ".join(re.sub(r"\D", "", str(value)) for value in values)
    return [number for number in NUMBERS if number in digits]


async def actor(openid: str) -> Actor:
    staff = await models.Staff.get_or_none(openid=openid)
    return Actor.of_staff(staff) if staff else Actor.of_resident(await models.Resident.get(openid=openid))


@pytest.fixture
async def history(orm, settings, fake_classifier):
    """A: verified, with numbers everywhere. B: returned (a correction kept) then cancelled, a card number.
    C: still being handled. D: verified, but only five days before the purge. E: cancelled, nothing personal."""
    await load_demo_data()
    clock = FrozenClock(T0)
    service = OrderService(settings, fake_classifier, clock=clock)
    jianshe = await actor("demo-dept_staff-jianshe")

    async def submit(openid: str, text: str, **kwargs) -> str:
        return (await service.submit(openid=openid, text=text, **kwargs)).order.number

    a = await submit("resident-A", "路灯坏了,电话13912345678,身份证110101199003071234",
                     location={"latitude": 28.641, "longitude": 104.406, "label": "楼坝村 座机0871-1234567"})
    await service.accept(a, jianshe)
    await service.progress(a, jianshe, "已打13912345678联系")
    await service.resolve(a, jianshe, "已修好,有问题打0871-1234567")
    await service.rate(a, await actor("resident-A"), 5, comment="谢谢,我的卡号6222021234567890123别外传")
    b = await submit("resident-B", "路灯的事 卡号6222021234567890123")
    await service.return_(b, jianshe, "不归我们,联系人13812345678", "社会民生", "minzheng")
    await service.cancel(b, await actor("resident-B"))
    c = await submit("resident-C", "路灯还是坏的,电话13912345678")
    await service.accept(c, jianshe)
    e = await submit("resident-E", "路灯不亮了")
    await service.cancel(e, await actor("resident-E"))
    clock.set(LATER - timedelta(days=5))
    d = await submit("resident-D", "路灯闪,电话13912345678")
    await service.accept(d, jianshe)
    await service.resolve(d, jianshe, "已修")
    await service.rate(d, await actor("resident-D"), 4)
    return {"A": a, "B": b, "C": c, "D": d, "E": e}


async def kept_words(number: str) -> list:
    """Everything that repeats the order's words."""
    order = await models.Order.get(number=number)
    return [order.text, order.normalized_text, order.result, order.location_label,
            await models.OrderEvent.filter(order_id=order.id).values_list("reason", "data"),
            await models.Rating.filter(order_id=order.id).values_list("comment", flat=True),
            await models.Outbox.filter(order_id=order.id).values_list("payload", flat=True),
            await models.Correction.filter(order_id=order.id).values_list("text", flat=True)]


async def test_the_purge_masks_closed_orders_past_the_time_and_nothing_else(history, settings):
    settings = settings.with_overrides(privacy={"purge_after_days": 30})
    before = {letter: await kept_words(number) for letter, number in history.items()}
    assert all(leaks(*before[letter]) for letter in "ABCD")

    dry = await Purge(settings, FrozenClock(LATER)).run(dry_run=True)
    assert dry.checked == 3  # A, B and E: closed before the cutoff
    assert [order.number for order in dry.purged] == [history["A"], history["B"]]
    described = dry.lines()
    assert described[0].startswith(f"{history['A']}(已关闭 40 天):诉求内容、办理结果、位置描述、处理记录")
    assert "评价留言" in described[0] and "分类纠正样本" in described[1] and "试运行" in described[-1]
    assert {letter: await kept_words(number) for letter, number in history.items()} == before
    assert not await models.OrderEvent.filter(action=PURGE_ACTION).exists()

    assert dry.contact_phones == 1 and "将清除 1 位群众留下的联系电话" in described[-2]
    phones = dict(await models.Resident.filter(contact_phone__isnull=False).values_list("openid", "contact_phone"))
    assert phones == {"resident-A": "13912345678", "resident-C": "13912345678", "resident-D": "13912345678"}

    versions = {letter: (await models.Order.get(number=number)).version for letter, number in history.items()}
    done = await Purge(settings, FrozenClock(LATER)).run()
    assert [order.number for order in done.purged] == [history["A"], history["B"]] and done.skipped == []
    assert done.lines()[-1] == "已清除 2 张工单的个人信息(已关闭超过 30 天的工单共 3 张)"
    assert done.contact_phones == 1  # A's: every order of theirs is purged; C's and D's orders are not
    assert dict(await models.Resident.filter(contact_phone__isnull=False).values_list("openid", "contact_phone")) \
        == {"resident-C": "13912345678", "resident-D": "13912345678"}
    for letter in "ABE":
        words = await kept_words(history[letter])
        assert leaks(*words) == [], (letter, leaks(*words))
        order = await models.Order.get(number=history[letter])
        assert order.purged_at == LATER and order.version == versions[letter] + 1
        event = await models.OrderEvent.get(order_id=order.id, action=PURGE_ACTION)
        assert (event.actor_role, event.actor_name, event.from_state, event.to_state) == (
            "system", "系统", order.state, order.state)
        assert event.data["after_days"] == 30 and bool(event.data["removed"]) == (letter != "E")
    order_a = await models.Order.get(number=history["A"])
    assert order_a.text == "路灯坏了,电话139****5678,身份证1101**********1234"
    assert order_a.result == "已修好,有问题打0871-****567" and order_a.location_label == "楼坝村 座机0871-****567"
    assert order_a.photos == [] and order_a.state == "verified"  # the rest of the order is as it was
    for letter in "CD":  # open, or closed too recently
        assert await kept_words(history[letter]) == before[letter]
        assert not await models.OrderEvent.filter(order__number=history[letter], action=PURGE_ACTION).exists()

    again = await Purge(settings, FrozenClock(LATER + timedelta(days=1))).run()
    assert again.checked == 0 and again.purged == []


async def test_a_purge_of_zero_days_is_off_and_changes_nothing(history, settings):
    purge = Purge(settings, FrozenClock(LATER + timedelta(days=3650)))
    assert settings.privacy.purge_after_days == 0 and not purge.enabled
    before = {letter: await kept_words(number) for letter, number in history.items()}
    report = await purge.run()
    assert report.checked == 0 and report.purged == []
    assert {letter: await kept_words(number) for letter, number in history.items()} == before
    assert not await models.Order.filter(purged_at__isnull=False).exists()
