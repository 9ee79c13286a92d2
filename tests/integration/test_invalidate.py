"""不予受理 on a real database (SQLite and PostgreSQL): who may close an order as invalid and when, what it writes
(the event with its code and reason, the resident's message, the department's notice), what a refusal leaves behind
(nothing), and the race with a department accepting; also the 退单 that takes a pending extension request with it."""
from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from api.demo.township import load_demo_data
from bot.notifier import Notifier
from bot.wechat_api import WeChatClient
from orders import models
from orders.clock import Clock
from orders.errors import Conflict, IllegalTransition, InvalidInput, NotFound, NotPermitted
from orders.services import Actor, OrderService
from tests.fake_wechat import FakeWeChat
from tests.integration.stats_history import staff
from tests.integration.test_outbox_wechat import fast_dispatcher

ADVICE = "电费问题请拨打国网供电服务热线 95598 反映,他们会派人核实。"
IN_THE_GRID = {"latitude": 28.641, "longitude": 104.406}  # XJB-01, demo-grid_worker's grid


@pytest.fixture
async def service(orm, settings, fake_classifier):
    await load_demo_data()
    return OrderService(settings, fake_classifier)


async def written(order_id: int) -> tuple:
    """Everything a use case writes about an order: its row's state and version, its events, its outbox rows."""
    order = await models.Order.get(id=order_id)
    return (order.state, order.version, order.closed_at, await models.OrderEvent.filter(order_id=order_id).count(),
            await models.Outbox.filter(order_id=order_id).count())


async def test_a_grid_worker_closes_a_dispatched_order_and_everyone_concerned_is_told(service):
    order = (await service.submit(openid="oVillager", text="路灯电费太贵了", location=IN_THE_GRID)).order
    assert order.state == "dispatched"  # auto → jianshe
    closed = await service.invalidate(order.number, await staff("demo-grid_worker"), "out_of_remit", ADVICE)
    assert closed.state == "invalid" and closed.closed_at is not None
    assert closed.department_id == order.department_id  # where it had been sent stays on record
    event = await models.OrderEvent.filter(order_id=order.id).order_by("-id").first()
    assert (event.action, event.from_state, event.to_state, event.actor_role, event.actor_name) == (
        "invalidate", "dispatched", "invalid", "grid_worker", "网格员王小燕")
    assert event.reason == ADVICE
    assert event.data == {"code": "out_of_remit", "code_label": "不属于本镇受理范围"}
    [told] = await models.Outbox.filter(order_id=order.id, kind="invalidated")
    assert told.recipient == "oVillager" and told.dedup_key == f"invalidated:{order.id}"
    assert {key: told.payload[key] for key in ("to", "number", "state", "code", "code_label", "reason")} == {
        "to": "resident", "number": order.number, "state": "invalid", "code": "out_of_remit",
        "code_label": "不属于本镇受理范围", "reason": ADVICE}
    [notice] = await models.Outbox.filter(order_id=order.id, kind="notify_invalidated")
    assert notice.recipient == "demo-dept_staff-jianshe" and notice.payload["to"] == "staff"


async def test_a_supervisor_closes_spam_waiting_for_dispatch_and_only_the_resident_hears(service):
    order = (await service.submit(openid="oVillager", text="问个事情")).order  # unsure: nobody's yet
    rows_before = await models.Outbox.filter(order_id=order.id).count()
    closed = await service.invalidate(order.number, await staff("demo-supervisor"), "spam",
                                      "这条消息没有具体诉求。如有需要反映的问题,请直接描述时间、地点和情况。")
    assert closed.state == "invalid"
    new = await models.Outbox.filter(order_id=order.id).order_by("id").offset(rows_before).values_list(
        "kind", "recipient")
    assert new == [("invalidated", "oVillager")]


async def test_a_department_returns_an_order_it_thinks_invalid_and_an_admin_closes_it(service):
    order = (await service.submit(openid="oVillager", text="路灯的事,和上周那单一样")).order
    jianshe = await staff("demo-dept_staff-jianshe")
    with pytest.raises(NotPermitted) as refused:  # a department may not close it itself
        await service.invalidate(order.number, jianshe, "duplicate", "与上周的工单是同一件事")
    assert "不予受理" in refused.value.message
    await service.return_(order.number, jianshe, "与 YK20261117-0003 重复,建议不予受理")
    closed = await service.invalidate(order.number, await staff("demo-admin"), "duplicate",
                                      "您反映的路灯问题已在上周的工单中办理,请关注那一单的进展。")
    assert closed.state == "invalid"
    assert await models.Outbox.filter(order_id=order.id, kind="notify_invalidated").count() == 0  # nobody has it


async def test_an_accepted_order_cannot_be_closed_as_invalid_and_nothing_is_written(service):
    order = (await service.submit(openid="oVillager", text="路灯不亮了")).order
    await service.accept(order.number, await staff("demo-dept_staff-jianshe"))
    before = await written(order.id)
    with pytest.raises(IllegalTransition) as refused:
        await service.invalidate(order.number, await staff("demo-supervisor"), "out_of_remit", ADVICE)
    assert refused.value.message == "工单当前状态为“办理中”(accepted),不能执行“不予受理”(invalidate)"
    assert await written(order.id) == before


@pytest.mark.parametrize("code,reason,message", [
    ("not_ours", ADVICE, "不予受理的原因代码无效:not_ours。可用:out_of_remit(不属于本镇受理范围)"),
    ("", ADVICE, "不予受理的原因代码无效"),
    (None, ADVICE, "不予受理的原因代码无效"),
    ("spam", "   ", "告知群众的说明不能为空"),
    ("spam", "无效", "告知群众的说明太短了"),
    ("spam", "请" * 501, "告知群众的说明太长了"),
])
async def test_bad_input_is_refused_in_chinese_before_anything_is_written(service, code, reason, message):
    order = (await service.submit(openid="oVillager", text="路灯不亮了")).order
    before = await written(order.id)
    with pytest.raises(InvalidInput) as refused:
        await service.invalidate(order.number, await staff("demo-grid_worker"), code, reason)
    assert message in refused.value.message and refused.value.status == 422
    assert await written(order.id) == before


async def test_closing_twice_or_outside_ones_grid_is_refused(service):
    here = (await service.submit(openid="oA", text="路灯不亮了", location=IN_THE_GRID)).order
    there = (await service.submit(openid="oB", text="路灯不亮了",
                                  location={"latitude": 28.625, "longitude": 104.425})).order  # XJB-04
    worker = await staff("demo-grid_worker")
    await service.invalidate(here.number, worker, "insufficient_info", "请补充具体是哪个村、哪根路灯,我们马上派人。")
    with pytest.raises(IllegalTransition):
        await service.invalidate(here.number, worker, "spam", "这条消息没有具体诉求。")
    with pytest.raises(NotFound):
        await service.invalidate(there.number, worker, "spam", "这条消息没有具体诉求。")
    assert (await models.Order.get(id=there.id)).state == "dispatched"
    with pytest.raises(IllegalTransition):  # terminal: nothing may be added to it either
        await service.add_photo(here.number, Actor.of_resident(await models.Resident.get(openid="oA")), "media-1")


async def test_a_department_accepting_while_a_grid_worker_closes_it_one_wins(service):
    order = (await service.submit(openid="oVillager", text="路灯不亮了", location=IN_THE_GRID)).order
    results = await asyncio.gather(
        service.accept(order.number, await staff("demo-dept_staff-jianshe")),
        service.invalidate(order.number, await staff("demo-grid_worker"), "spam", "这条消息没有具体诉求。"),
        return_exceptions=True)
    assert sum(isinstance(result, models.Order) for result in results) == 1, results
    assert sum(isinstance(result, Conflict) for result in results) == 1, results
    final = await models.Order.get(id=order.id)
    told = await models.Outbox.filter(order_id=order.id, kind__in=["accepted", "invalidated"]).values_list(
        "kind", flat=True)
    assert told == [{"accepted": "accepted", "invalid": "invalidated"}[final.state]]


async def test_the_residents_message_goes_out_like_the_survey(service, settings, store):
    fake = FakeWeChat().start()
    try:
        wired = settings.with_overrides(wechat={"api_base": fake.base_url})
        client = WeChatClient(wired, store)
        order = (await service.submit(openid="oVillager", text="路灯电费太贵了", location=IN_THE_GRID)).order
        await models.Resident.filter(openid="oVillager").update(last_message_at=Clock().now() - timedelta(hours=1))
        await service.invalidate(order.number, await staff("demo-grid_worker"), "out_of_remit", ADVICE)
        report = await fast_dispatcher(wired, Notifier(client, wired)).run_until_idle()
        await client.close()
        assert report.dead == 0
        [message] = fake.messages_to("oVillager")
        assert message.path == "/cgi-bin/message/custom/send"  # inside the 48-hour window
        assert "不予受理" in message.body["text"]["content"] and ADVICE in message.body["text"]["content"]
    finally:
        fake.stop()


async def test_a_return_takes_the_pending_extension_request_with_it(service):
    order = (await service.submit(openid="oVillager", text="路灯不亮了")).order
    jianshe = await staff("demo-dept_staff-jianshe")
    await service.accept(order.number, jianshe)
    await service.request_extension(order.number, jianshe, 5, "等配件")
    returned = await service.return_(order.number, jianshe, "其实是电力公司的线路")
    assert returned.extension_days_requested is None
