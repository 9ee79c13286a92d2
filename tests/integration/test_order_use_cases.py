"""The use cases on a real database (SQLite and PostgreSQL): transitions, audit trail, outbox, races."""
from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from api.demo.township import load_demo_data
from orders import models
from orders.clock import FrozenClock
from orders.errors import Conflict, IllegalTransition, InvalidInput, NotFound, NotPermitted
from orders.services import Actor, OrderService

DAY_SHIFT = datetime.fromisoformat("2026-11-24T10:00:00+08:00")  # a Tuesday


@pytest.fixture
async def service(orm, settings, fake_classifier):
    await load_demo_data()
    # a weekday's day shift of the demo roster: who hears of an urgent report must not depend on when tests run
    return OrderService(settings, fake_classifier, clock=FrozenClock(DAY_SHIFT))


async def staff(openid: str) -> Actor:
    return Actor.of_staff(await models.Staff.get(openid=openid))


async def resident(openid: str) -> Actor:
    return Actor.of_resident(await models.Resident.get(openid=openid))


async def test_a_confident_request_for_a_deactivated_department_waits_for_a_grid_worker(service):
    assert (await service.submit(openid="oResident0001", text="村口的路灯坏了")).order.state == "dispatched"
    await models.Department.filter(code="jianshe").update(active=False)
    service._departments = None  # as every worker does within DEPARTMENT_CACHE_SECONDS
    submission = await service.submit(openid="oResident0002", text="桥头的路灯也坏了")
    assert not submission.auto_dispatched and submission.order.state == "submitted"
    assert submission.order.department_id is None
    notified = await models.Outbox.filter(order_id=submission.order.id).values_list("kind", flat=True)
    assert set(notified) == {"notify_dispatch_needed"}


async def test_confident_request_is_dispatched_automatically_and_audited(service):
    submission = await service.submit(openid="oResident0001", text="村口的路灯坏了一个星期了")
    order = submission.order
    assert submission.auto_dispatched and order.state == "dispatched"
    department = await models.Department.get(id=order.department_id)
    assert department.code == "jianshe" and order.category == "社会民生"
    assert order.accept_deadline is not None and order.resolve_deadline > order.accept_deadline
    events = await models.OrderEvent.filter(order_id=order.id).order_by("id").values_list("action", "from_state",
                                                                                         "to_state", "actor_role")
    assert events == [("submit", None, "submitted", "resident"), ("dispatch", "submitted", "dispatched", "system")]
    notified = await models.Outbox.filter(order_id=order.id).values_list("kind", "recipient")
    assert notified == [("notify_dispatched", "demo-dept_staff-jianshe")]


async def test_unsure_request_waits_for_the_grid_worker_whose_correction_is_kept(service):
    order = (await service.submit(openid="o2", text="隔壁两口子天天吵架",
                                  location={"latitude": 28.641, "longitude": 104.406, "label": "楼坝村"})).order
    assert order.state == "submitted" and order.department_id is None
    grid = await models.Grid.get(id=order.grid_id)
    assert grid.code == "XJB-01"
    recipients = await models.Outbox.filter(order_id=order.id, kind="notify_dispatch_needed").values_list(
        "recipient", flat=True)
    assert recipients == ["demo-grid_worker"]  # the worker of the grid the location falls in
    worker = await staff("demo-grid_worker")
    order = await service.dispatch(order.number, worker, "paichusuo", category="平安建设", reason="涉及家暴")
    assert order.state == "dispatched"
    correction = await models.Correction.get(order_id=order.id)
    assert (correction.category, correction.department, correction.source) == ("平安建设", "paichusuo", "redispatch")


async def test_dispatch_refuses_a_pair_the_taxonomy_does_not_allow(service):
    order = (await service.submit(openid="o2", text="隔壁两口子天天吵架")).order
    with pytest.raises(InvalidInput):
        await service.dispatch(order.number, await staff("demo-grid_worker"), "jiaoyu", category="安全生产")
    assert (await models.Order.get(id=order.id)).state == "submitted"
    assert await models.OrderEvent.filter(order_id=order.id).count() == 1


async def test_the_whole_loop_and_the_timeline(service):
    order = (await service.submit(openid="oR", text="路灯不亮了")).order
    clerk = await staff("demo-dept_staff-jianshe")
    await service.accept(order.number, clerk)
    await service.progress(order.number, clerk, "电工已到现场")
    await service.request_extension(order.number, clerk, 2, "等配件")
    before = (await models.Order.get(id=order.id)).resolve_deadline
    await service.extend(order.number, await staff("demo-supervisor"), reason="同意")
    after = (await models.Order.get(id=order.id)).resolve_deadline
    assert (after - before).days == 2
    await service.resolve(order.number, clerk, "已更换灯泡")
    order = await service.rate(order.number, await resident("oR"), 5, comment="很满意")
    assert order.state == "verified" and order.rated_at is not None
    actions = await models.OrderEvent.filter(order_id=order.id).order_by("id").values_list("action", flat=True)
    assert actions == ["submit", "dispatch", "accept", "progress", "request_extension", "extend", "resolve", "rate"]
    kinds = await models.Outbox.filter(order_id=order.id).order_by("id").values_list("kind", flat=True)
    # the internal progress note tells nobody; the approved extension tells the department and the resident
    assert kinds == ["notify_dispatched", "accepted", "notify_extension_requested", "notify_extension_decided",
                     "extension_decided", "survey"]
    rating = await models.Rating.get(order_id=order.id)
    assert (rating.score, rating.resolved, rating.comment) == (5, True, "很满意")


async def test_a_progress_note_reaches_the_resident_only_when_the_department_says_so(service):
    order = (await service.submit(openid="oR", text="路灯不亮了")).order
    clerk = await staff("demo-dept_staff-jianshe")
    await service.accept(order.number, clerk)
    await service.progress(order.number, clerk, "配件周三到,老王负责")
    await service.progress(order.number, clerk, "电工已到现场", notify_resident=True)
    with pytest.raises(InvalidInput):
        await service.progress(order.number, clerk, "不是布尔值", notify_resident="yes")
    notes = await models.OrderEvent.filter(order_id=order.id, action="progress").order_by("id").values_list(
        "reason", "data")
    assert [(reason, data["notify_resident"]) for reason, data in notes] == [("配件周三到,老王负责", False),
                                                                             ("电工已到现场", True)]
    [told] = await models.Outbox.filter(order_id=order.id, kind="resident_progress")
    assert told.recipient == "oR" and told.payload["note"] == "电工已到现场"
    assert told.payload["to"] == "resident" and told.payload["department"] == "村镇建设办"


async def test_unsatisfied_rating_reopens_twice_then_goes_to_the_supervisor(service):
    order = (await service.submit(openid="oR", text="路灯不亮了")).order
    clerk, me = await staff("demo-dept_staff-jianshe"), await resident("oR")
    for round_ in range(3):
        await service.accept(order.number, clerk)
        await service.resolve(order.number, clerk, f"第{round_ + 1}次处理")
        order = await service.rate(order.number, me, 1, comment="还是不亮")
    assert order.state == "verified" and order.reopen_count == 2 and order.escalation_level == 2
    actions = await models.OrderEvent.filter(order_id=order.id).order_by("id").values_list("action", flat=True)
    assert actions[-2:] == ["rate", "escalate"] and actions.count("reopen") == 2
    assert await models.Rating.filter(order_id=order.id).count() == 3


async def test_scope_hides_other_peoples_orders(service):
    order = (await service.submit(openid="oR", text="路灯不亮了")).order
    with pytest.raises(NotFound):
        await service.accept(order.number, await staff("demo-dept_staff-minzheng"))
    await service.submit(openid="someone-else", text="低保的事")
    with pytest.raises(NotFound):
        await service.cancel(order.number, await resident("someone-else"))
    assert (await models.Order.get(id=order.id)).state == "dispatched"


async def test_cancel_only_before_acceptance(service):
    first = (await service.submit(openid="oR", text="路灯不亮了")).order
    second = (await service.submit(openid="oR", text="低保怎么申请")).order
    me = await resident("oR")
    assert (await service.cancel(first.number, me)).state == "cancelled"
    await service.accept(second.number, await staff("demo-dept_staff-minzheng"))
    with pytest.raises(IllegalTransition):
        await service.cancel(second.number, me)


async def test_numbers_are_unique_and_sequential_per_day(service):
    orders = await asyncio.gather(*(service.submit(openid=f"o{i}", text="路灯不亮了") for i in range(12)))
    numbers = sorted(s.order.number for s in orders)
    assert len(set(numbers)) == 12
    assert [int(n.rsplit("-", 1)[1]) for n in numbers] == list(range(1, 13))


async def test_twenty_concurrent_accepts_exactly_one_wins(service):
    order = (await service.submit(openid="oR", text="路灯不亮了")).order
    clerk = await staff("demo-dept_staff-jianshe")
    results = await asyncio.gather(*(service.accept(order.number, clerk) for _ in range(20)), return_exceptions=True)
    winners = [r for r in results if isinstance(r, models.Order)]
    losers = [r for r in results if isinstance(r, Conflict)]
    assert len(winners) == 1 and len(losers) == 19, results
    assert await models.OrderEvent.filter(order_id=order.id, action="accept").count() == 1
    assert await models.Outbox.filter(order_id=order.id, kind="accepted").count() == 1


async def test_a_failed_use_case_leaves_no_partial_rows(service, monkeypatch):
    order = (await service.submit(openid="oR", text="路灯不亮了")).order
    clerk = await staff("demo-dept_staff-jianshe")
    await service.accept(order.number, clerk)
    events_before = await models.OrderEvent.all().count()
    outbox_before = await models.Outbox.all().count()

    async def broken(*args, **kwargs):
        raise RuntimeError("the survey writer broke after the order row changed")

    monkeypatch.setattr(service, "_notify_resident", broken)
    with pytest.raises(RuntimeError):
        await service.resolve(order.number, clerk, "已修好")
    fresh = await models.Order.get(id=order.id)
    assert fresh.state == "accepted" and fresh.result is None and fresh.resolved_at is None
    assert await models.OrderEvent.all().count() == events_before
    assert await models.Outbox.all().count() == outbox_before


async def test_bad_input_is_refused_and_nothing_is_written(service):
    for text in ("", "   ", "x" * 5000):
        with pytest.raises(InvalidInput):
            await service.submit(openid="oR", text=text)
    assert await models.Order.all().count() == 0
    order = (await service.submit(openid="oR", text="路灯不亮了")).order
    clerk = await staff("demo-dept_staff-jianshe")
    await service.accept(order.number, clerk)
    with pytest.raises(InvalidInput):
        await service.resolve(order.number, clerk, "  ")
    await service.resolve(order.number, clerk, "好了")
    for score in (0, 6, "5", True):
        with pytest.raises(InvalidInput):
            await service.rate(order.number, await resident("oR"), score)
    assert (await models.Order.get(id=order.id)).state == "resolved"


@pytest.mark.parametrize("local_time, on_duty", [
    ("2026-11-24T10:00:00+08:00", "demo-supervisor"),  # a Tuesday's day shift (demo roster: 督办员李主任)
    ("2026-11-24T23:00:00+08:00", "demo-grid_worker"),  # its night shift (网格员王小燕)
])
async def test_danger_words_alert_whoever_the_roster_has_on_duty_at_once(orm, settings, fake_classifier,
                                                                          local_time, on_duty):
    await load_demo_data()
    service = OrderService(settings, fake_classifier, clock=FrozenClock(datetime.fromisoformat(local_time)))
    order = (await service.submit(openid="oR", text="厨房煤气泄漏了有味道")).order
    assert order.urgency == "急难事"
    alerts = await models.Outbox.filter(order_id=order.id, kind="notify_urgent_report").values_list("recipient",
                                                                                                  flat=True)
    assert alerts == [on_duty]


async def test_the_supervisors_alert_is_reported_only_when_someone_can_receive_it(service):
    assert (await service.submit(openid="oR", text="厨房煤气泄漏了有味道")).alerted
    assert not (await service.submit(openid="oR", text="村口的路灯坏了")).alerted  # no danger: no alert
    await models.Staff.filter(role="supervisor").update(active=False)
    unheard = await service.submit(openid="oR", text="仓库着火了")
    assert unheard.order.urgency == "急难事" and not unheard.alerted
    assert not await models.Outbox.filter(order_id=unheard.order.id, kind="notify_urgent_report").exists()


async def test_a_resident_note_is_recorded_versioned_and_refused_cleanly(service):
    order = (await service.submit(openid="oR", text="路灯不亮了")).order
    owner = await resident("oR")
    noted = await service.add_note(order.number, owner, "  灯杆在村委会门口  ")
    assert noted.version == order.version + 1 and noted.state == order.state
    event = await models.OrderEvent.filter(order_id=order.id).order_by("-id").first()
    assert (event.action, event.actor_role, event.actor_id, event.reason, event.data) == (
        "resident_note", "resident", owner.id, "灯杆在村委会门口", {"text": "灯杆在村委会门口"})
    told = await models.Outbox.filter(order_id=order.id, kind="notify_resident_note").values_list("recipient",
                                                                                                 "payload")
    assert [(recipient, payload["note"]) for recipient, payload in told] == [("demo-dept_staff-jianshe", "灯杆在村委会门口")]
    await service.submit(openid="oStranger", text="桥头的路灯也坏了")
    stranger = await resident("oStranger")
    written = (await models.OrderEvent.all().count(), await models.Outbox.all().count())
    with pytest.raises(InvalidInput, match="补充内容不能为空"):
        await service.add_note(order.number, owner, "   ")
    with pytest.raises(InvalidInput, match="补充内容太长了"):
        await service.add_note(order.number, owner, "灯" * 1001)
    with pytest.raises(NotPermitted):  # staff write progress notes, not the resident's words
        await service.add_note(order.number, await staff("demo-dept_staff-jianshe"), "灯杆在村委会门口")
    with pytest.raises(NotFound):
        await service.add_note(order.number, stranger, "我也看到了")
    assert (await models.OrderEvent.all().count(), await models.Outbox.all().count()) == written
    await service.cancel(order.number, owner)
    with pytest.raises(IllegalTransition):
        await service.add_note(order.number, owner, "又坏了")
    actions = await models.OrderEvent.filter(order_id=order.id).order_by("id").values_list("action", flat=True)
    assert actions == ["submit", "dispatch", "resident_note", "cancel"]


async def test_return_frees_the_order_and_records_the_suggestion(service):
    order = (await service.submit(openid="oR", text="路灯不亮了")).order
    clerk = await staff("demo-dept_staff-jianshe")
    order = await service.return_(order.number, clerk, "这是供电公司的线路", suggested_department="anjian",
                                  suggested_category="安全生产")
    assert order.state == "returned" and order.department_id is None and order.routing_corrected
    correction = await models.Correction.get(order_id=order.id)
    assert (correction.department, correction.source) == ("anjian", "return")
    event = await models.OrderEvent.filter(order_id=order.id, action="return_").first()
    assert event.reason == "这是供电公司的线路" and event.actor_name == clerk.name


async def test_resident_seen_creates_once_and_keeps_the_latest_contact(service):
    from datetime import datetime, timedelta, timezone

    from tortoise.transactions import in_transaction

    first = datetime(2026, 11, 24, 8, 0, tzinfo=timezone.utc)
    async with in_transaction() as conn:
        created = await service.resident_seen("o_seen", first, conn)
    async with in_transaction() as conn:
        again = await service.resident_seen("o_seen", first + timedelta(hours=1), conn, subscribed=False)
    async with in_transaction() as conn:
        later = await service.resident_seen("o_seen", first + timedelta(hours=2), conn)
    assert created.id == again.id == later.id and created.openid == "o_seen" and created.subscribed
    assert (again.subscribed, later.subscribed) == (False, False)  # a plain message does not resubscribe
    assert later.created_at == first and later.last_message_at == first + timedelta(hours=2) and later.unionid is None
    stored = await models.Resident.get(openid="o_seen")
    assert (stored.subscribed, stored.last_message_at, stored.created_at) == (False, first + timedelta(hours=2), first)
    assert await models.Resident.filter(openid="o_seen").count() == 1
    # the intake's form: ids only, for a known and a new resident at once, with the same upsert
    async with in_transaction() as conn:
        ids = await service.resident_ids_seen(["o_seen", "o_new", "o_seen"], first + timedelta(hours=3), conn)
    assert ids == {"o_seen": created.id, "o_new": (await models.Resident.get(openid="o_new")).id}
    stored = await models.Resident.get(openid="o_seen")
    assert (stored.subscribed, stored.last_message_at, stored.created_at) == (False, first + timedelta(hours=3), first)


@pytest.mark.parametrize("text", ["村口的路灯坏了一个星期了", "嗯嗯"])
async def test_the_submitted_order_is_what_the_database_holds(service, text):
    """submit() writes the order once, in its final state, and does not read it back: the object it returns
    must equal the stored row, field by field."""
    order = (await service.submit(openid="oResident0001", text=text)).order
    stored = await models.Order.get(id=order.id)
    for name in models.Order._meta.fields_db_projection:
        assert getattr(order, name) == getattr(stored, name), name
    assert stored.version == (1 if stored.state == "dispatched" else 0)
