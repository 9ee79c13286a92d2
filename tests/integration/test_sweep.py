"""The periodic sweep with a frozen clock, on SQLite and PostgreSQL: the survey reminder, closed_unrated, overdue
and every escalation step (ordinary orders and 三级调解 for disputes), extensions, two sweeps at once."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from api.demo.township import load_demo_data
from orders import models
from orders.clock import SHANGHAI, FrozenClock
from orders.services import Actor, OrderService
from orders.stats import Stats
from orders.store import MemoryStore
from orders.sweep import Sweeper

# A Tuesday morning in the township, held in UTC: Tortoise's update() on SQLite stores an aware datetime as
# written, and its filters compare text, so everything the use cases write must be UTC (as Clock() gives).
T0 = datetime(2026, 11, 24, 9, 0, tzinfo=SHANGHAI).astimezone(timezone.utc)
IN_GRID_XJB_01 = {"latitude": 28.641, "longitude": 104.406, "label": "楼坝村"}


@pytest.fixture
async def clock():
    return FrozenClock(T0)


@pytest.fixture
async def service(orm, settings, fake_classifier, clock):
    await load_demo_data()
    return OrderService(settings, fake_classifier, clock=clock)


@pytest.fixture
def sweeper(service):
    return Sweeper(service)


async def staff(openid: str) -> Actor:
    return Actor.of_staff(await models.Staff.get(openid=openid))


async def resolved_order(service, clock) -> models.Order:
    order = (await service.submit(openid="oResident", text="村口的路灯坏了", location=IN_GRID_XJB_01)).order
    clerk = await staff("demo-dept_staff-jianshe")
    await service.accept(order.number, clerk)
    return await service.resolve(order.number, clerk, "已更换灯泡")


async def events(order, action: str | None = None) -> list[models.OrderEvent]:
    query = models.OrderEvent.filter(order_id=order.id).order_by("id")
    return list(await (query.filter(action=action) if action else query))


async def outbox(order, kind: str) -> list[tuple[str, dict]]:
    return [tuple(row) for row in await models.Outbox.filter(order_id=order.id, kind=kind).order_by("id")
            .values_list("recipient", "payload")]


# ---------------------------------------------------------------- 验单
async def test_one_reminder_a_day_after_resolution_when_unrated(service, sweeper, clock):
    order = await resolved_order(service, clock)
    clock.advance(hours=23, minutes=59)
    assert (await sweeper.run_once()).reminded == 0
    clock.advance(minutes=2)
    assert (await sweeper.run_once()).reminded == 1
    [(recipient, payload)] = await outbox(order, "survey_reminder")
    assert recipient == "oResident" and payload["number"] == order.number and payload["result"] == "已更换灯泡"
    [event] = await events(order, "survey_reminder")
    assert event.actor_role == "system" and event.to_state == "resolved"
    clock.advance(days=2)
    assert (await sweeper.run_once()).reminded == 0  # once only
    assert len(await outbox(order, "survey_reminder")) == 1


async def test_a_rated_order_gets_no_reminder(service, sweeper, clock):
    order = await resolved_order(service, clock)
    resident = Actor.of_resident(await models.Resident.get(openid="oResident"))
    await service.rate(order.number, resident, 5, comment="很满意")
    clock.advance(days=3)
    report = await sweeper.run_once()
    assert report.reminded == 0 and report.closed == 0
    assert await outbox(order, "survey_reminder") == []


async def test_unrated_after_the_window_is_closed_unrated_and_never_counted_satisfied(service, sweeper, clock,
                                                                                       settings):
    order = await resolved_order(service, clock)
    clock.advance(days=settings.survey.window_days, minutes=-1)
    assert (await sweeper.run_once()).closed == 0
    clock.advance(minutes=2)
    report = await sweeper.run_once()
    assert report.closed == 1 and report.reminded == 0  # too late for a reminder: closed instead
    order = await models.Order.get(id=order.id)
    assert order.state == "closed_unrated" and order.closed_at == clock.now()
    [event] = await events(order, "close_unrated")
    assert event.from_state == "resolved" and "7 天内未评价" in event.reason
    assert await models.Rating.filter(order_id=order.id).count() == 0
    stats = Stats(clock=clock)
    figures = await stats.summary(stats.period("30d"))
    assert figures.counts["closed_unrated"] == 1
    assert figures.rates["satisfaction"].denominator == 0  # not a rating, not satisfied
    assert (await sweeper.run_once()).closed == 0


# ---------------------------------------------------------------- 督单: ordinary orders
async def test_not_accepted_within_an_hour_is_overdue_and_escalated_to_the_village_committee(service, sweeper,
                                                                                               clock):
    order = (await service.submit(openid="oResident", text="路灯坏了", location=IN_GRID_XJB_01)).order
    clock.advance(minutes=59)
    report = await sweeper.run_once()
    assert (report.escalated, report.marked_overdue) == (0, 0)
    clock.advance(minutes=2)
    assert (await sweeper.run_once()).escalated == 1
    order = await models.Order.get(id=order.id)
    assert order.overdue and order.escalation_level == 1
    [event] = await events(order, "escalate")
    assert event.data["from_level"] == 0 and event.data["to_level"] == 1 and event.data["level_name"] == "村委"
    assert "接单时限" in event.reason and event.actor_name == "督办系统"
    notified = {recipient: payload for recipient, payload in await outbox(order, "notify_escalated")}
    assert set(notified) == {"demo-supervisor", "demo-grid_worker"}  # 乡镇 supervisor and the village
    assert notified["demo-supervisor"]["level_name"] == "村委" and notified["demo-supervisor"]["overdue"]
    clock.advance(minutes=30)
    assert (await sweeper.run_once()).escalated == 0  # nothing new: no repeat
    assert len(await events(order, "escalate")) == 1


async def test_accepting_late_ends_the_overdue_flag_but_not_the_level_and_the_ladder_goes_on(service, sweeper,
                                                                                            clock):
    order = (await service.submit(openid="oResident", text="路灯坏了")).order
    clock.advance(hours=2)
    await sweeper.run_once()
    order = await service.accept(order.number, await staff("demo-dept_staff-jianshe"))
    assert (order.escalation_level, order.overdue, order.accepted_within_deadline) == (1, False, False)
    clock.advance(hours=1)
    report = await sweeper.run_once()
    assert (report.escalated, report.marked_overdue) == (0, 0)
    clock.advance(days=3)  # past the resolve deadline too: the second missed checkpoint
    assert (await sweeper.run_once()).escalated == 1
    order = await models.Order.get(id=order.id)
    assert (order.escalation_level, order.overdue) == (2, True)


async def test_every_step_of_the_ladder_for_an_order_accepted_on_time(service, sweeper, clock):
    order = (await service.submit(openid="oResident", text="路灯坏了", location=IN_GRID_XJB_01)).order
    await service.accept(order.number, await staff("demo-dept_staff-jianshe"))
    clock.advance(days=3, minutes=-1)  # 操心事: three days to resolve
    assert (await sweeper.run_once()).escalated == 0
    clock.advance(minutes=2)
    assert (await sweeper.run_once()).escalated == 1
    order = await models.Order.get(id=order.id)
    assert (order.escalation_level, order.overdue) == (1, True)
    clock.advance(days=3)  # as long again: 乡镇
    assert (await sweeper.run_once()).escalated == 1
    order = await models.Order.get(id=order.id)
    assert order.escalation_level == 2
    steps = [(e.data["from_level"], e.data["to_level"], e.reason) for e in await events(order, "escalate")]
    assert [s[:2] for s in steps] == [(0, 1), (1, 2)]
    assert "办结时限" in steps[0][2] and "一倍" in steps[1][2]
    clock.advance(days=30)
    assert (await sweeper.run_once()).escalated == 0  # 乡镇 is the top
    assert [p["level_name"] for r, p in await outbox(order, "notify_escalated") if r == "demo-supervisor"] == [
        "村委", "乡镇"]


async def test_a_sweep_that_missed_days_takes_each_step_with_its_own_event(service, sweeper, clock):
    order = (await service.submit(openid="oResident", text="路灯坏了")).order
    clock.advance(days=10)
    assert (await sweeper.run_once()).escalated == 2
    levels = [(e.data["from_level"], e.data["to_level"]) for e in await events(order, "escalate")]
    assert levels == [(0, 1), (1, 2)]


async def test_an_approved_extension_moves_the_deadline_the_sweep_watches(service, sweeper, clock):
    order = (await service.submit(openid="oResident", text="路灯坏了")).order
    clerk, supervisor = await staff("demo-dept_staff-jianshe"), await staff("demo-supervisor")
    await service.accept(order.number, clerk)
    clock.advance(days=2)
    await service.request_extension(order.number, clerk, 4, "等配件")
    await service.extend(order.number, supervisor, reason="同意")
    clock.advance(days=1, minutes=1)  # past the original deadline
    assert (await sweeper.run_once()).escalated == 0
    clock.advance(days=4)  # past the extended one
    assert (await sweeper.run_once()).escalated == 1
    assert (await models.Order.get(id=order.id)).overdue


async def test_a_resolved_order_is_no_longer_watched(service, sweeper, clock):
    order = await resolved_order(service, clock)
    clock.advance(days=5)
    report = await sweeper.run_once()
    assert report.escalated == 0 and report.marked_overdue == 0
    assert await events(order, "escalate") == []


# ---------------------------------------------------------------- 督单: 三级调解
async def dispute(service) -> models.Order:
    order = (await service.submit(openid="oNeighbour", text="隔壁两口子天天吵架", location=IN_GRID_XJB_01)).order
    return await service.dispatch(order.number, await staff("demo-grid_worker"), "sifasuo", category="平安建设")


async def test_a_dispute_climbs_at_seven_and_fifteen_days_and_is_overdue_at_thirty(service, sweeper, clock):
    order = await dispute(service)
    assert order.resolve_deadline == clock.now() + timedelta(days=30)
    await service.accept(order.number, await staff("demo-dept_staff-sifasuo"))
    clock.advance(days=6)
    assert (await sweeper.run_once()).escalated == 0  # an ordinary order would have been escalated by now
    clock.advance(days=1, minutes=1)
    assert (await sweeper.run_once()).escalated == 1
    order = await models.Order.get(id=order.id)
    assert (order.escalation_level, order.overdue) == (1, False)
    clock.advance(days=8)
    assert (await sweeper.run_once()).escalated == 1
    order = await models.Order.get(id=order.id)
    assert (order.escalation_level, order.overdue) == (2, False)
    clock.advance(days=15)
    report = await sweeper.run_once()
    assert (report.escalated, report.marked_overdue) == (0, 1)
    order = await models.Order.get(id=order.id)
    assert (order.escalation_level, order.overdue) == (2, True)
    reasons = [e.reason for e in await events(order, "escalate")]
    assert "村(网格)调解满 7 天" in reasons[0] and "村委调解满 15 天" in reasons[1]
    assert reasons[2].startswith("已逾期") and "调解时限" in reasons[2]
    assert (await sweeper.run_once()).marked_overdue == 0


async def test_mediation_days_come_from_the_configuration(orm, settings, fake_classifier, clock):
    await load_demo_data()
    service = OrderService(settings.with_overrides(deadlines={"mediation_days": [2, 4, 6]}), fake_classifier,
                           clock=clock)
    order = await dispute(service)
    assert order.resolve_deadline == clock.now() + timedelta(days=6)
    await service.accept(order.number, await staff("demo-dept_staff-sifasuo"))
    clock.advance(days=2, minutes=1)
    assert (await Sweeper(service).run_once()).escalated == 1


async def test_an_unaccepted_dispute_is_flagged_overdue_and_the_supervisor_told(service, sweeper, clock):
    order = await dispute(service)
    clock.advance(hours=2)
    report = await sweeper.run_once()
    assert (report.escalated, report.marked_overdue) == (0, 1)
    order = await models.Order.get(id=order.id)
    assert (order.escalation_level, order.overdue) == (0, True)
    [(recipient, payload)] = await outbox(order, "notify_escalated")
    assert recipient == "demo-supervisor" and payload["from_level"] == payload["level"] == 0
    assert "接单时限" in payload["reason"]


# ---------------------------------------------------------------- several workers
async def test_two_sweeps_at_once_change_each_order_once(service, clock):
    late = (await service.submit(openid="oA", text="路灯坏了")).order
    overdue_dispute = await dispute(service)
    unrated = await resolved_order(service, clock)
    clock.advance(days=1, minutes=1)
    first, second = Sweeper(service, name="w1"), Sweeper(service, name="w2")
    one, two = await asyncio.gather(first.run_once(), second.run_once())
    assert one.reminded + two.reminded == 1
    assert one.escalated + two.escalated == 1  # late: 0 → 1 (missed accept); 1 → 2 needs the second deadline
    assert one.marked_overdue + two.marked_overdue == 1
    assert len(await outbox(unrated, "survey_reminder")) == 1
    assert len(await events(late, "escalate")) == 1
    assert len(await events(overdue_dispute, "escalate")) == 1
    clock.advance(days=7)
    one, two = await asyncio.gather(first.run_once(), second.run_once())
    assert one.closed + two.closed == 1
    assert len(await events(unrated, "close_unrated")) == 1
    assert [e.data["to_level"] for e in await events(late, "escalate")] == [1, 2]


async def test_workers_sharing_a_store_take_turns_per_interval(service, clock):
    store = MemoryStore()
    await service.submit(openid="oA", text="路灯坏了")
    clock.advance(hours=2)
    first = Sweeper(service, store, interval_seconds=60, name="w1")
    second = Sweeper(service, store, interval_seconds=60, name="w2")
    assert (await first.run_once()).escalated == 1
    assert (await second.run_once()).skipped
