"""Similar orders (合并工单) on a real database with the trained router: looked for after the intake's commit, in
the background (and by the sweep for reports a stopped worker left), stored on the order, shown to staff only and
only while they are open."""
from __future__ import annotations

from datetime import timedelta

import pytest

from api.demo.township import load_demo_data
from orders import models, queries
from orders.services import OrderService
from tests.integration.stats_history import resident, staff

IN_THE_GRID = {"latitude": 28.641, "longitude": 104.406}  # XJB-01
NEXT_DOOR = {"latitude": 28.6412, "longitude": 104.4062}  # about 30 m away, XJB-01
ACROSS_TOWN = {"latitude": 28.625, "longitude": 104.425}  # XJB-04, about 2.6 km away
LAMP = "村口的路灯坏了,晚上黑漆漆的"
SAME_LAMP = "村口路灯不亮了,晚上黑漆漆的"


@pytest.fixture
async def service(orm, settings, trained_router):
    await load_demo_data()
    return OrderService(settings, trained_router)


async def submit(service: OrderService, openid: str, text: str, location=None) -> models.Order:
    return (await service.submit(openid=openid, text=text, location=location)).order


async def test_a_report_of_the_same_matter_nearby_lists_the_open_order_after_the_intake_commits(service):
    first = await submit(service, "oA", LAMP, IN_THE_GRID)
    await service.similar_settled()
    water = await submit(service, "oW", "家里自来水停了一整天", IN_THE_GRID)
    far = await submit(service, "oF", LAMP, ACROSS_TOWN)
    nowhere = await submit(service, "oN", LAMP)
    second = await submit(service, "oB", SAME_LAMP, NEXT_DOOR)
    assert len(service._similar_tasks) >= 1  # started after the commit, not awaited by the reply
    await service.similar_settled()
    rows = {row.number: row.similar for row in await models.Order.all()}
    [entry] = rows[second.number]
    assert entry["number"] == first.number and entry["score"] >= service.settings.duplicates.threshold
    assert 10 < entry["distance_m"] < 60
    assert rows[first.number] == [] and rows[water.number] == [] and rows[nowhere.number] == []
    assert first.number not in [e["number"] for e in rows[far.number]]  # the same words 2.6 km away


async def test_staff_see_similar_open_orders_on_the_order_the_resident_does_not(service):
    first = await submit(service, "oA", LAMP, IN_THE_GRID)
    second = await submit(service, "oB", SAME_LAMP, NEXT_DOOR)
    await service.similar_settled()
    view = await queries.order_detail(await staff("demo-grid_worker"), second.number)
    assert [entry["number"] for entry in view.similar] == [first.number]
    assert (await queries.order_detail(await resident("oB"), second.number)).similar == []
    await service.merge(second.number, await staff("demo-grid_worker"), first.number)
    merged = await queries.order_detail(await staff("demo-supervisor"), second.number)
    assert merged.merged_into == first.number
    primary = await queries.order_detail(await staff("demo-supervisor"), first.number)
    assert primary.followers == [second.number] and primary.merged_into is None
    third = await submit(service, "oC", SAME_LAMP, NEXT_DOOR)
    await service.similar_settled()
    await service.cancel(third.number, await resident("oC"))
    fourth = await submit(service, "oD", LAMP, IN_THE_GRID)
    await service.similar_settled()
    listed = [e["number"] for e in (await queries.order_detail(await staff("demo-grid_worker"), fourth.number)).similar]
    assert first.number in listed and third.number not in listed and second.number not in listed  # open ones only


async def test_the_sweep_looks_for_reports_whose_look_up_never_ran(service):
    first = await submit(service, "oA", LAMP, IN_THE_GRID)
    second = await submit(service, "oB", SAME_LAMP, NEXT_DOOR)
    await service.similar_settled()
    await models.Order.filter(id=second.id).update(similar=None)  # as if the worker stopped before it ran
    now = service.clock.now()
    assert await service.find_pending_similar(now) == 0  # too young: its own task may still be running
    assert await service.find_pending_similar(now + timedelta(minutes=2)) == 1
    assert [e["number"] for e in (await models.Order.get(id=second.id)).similar] == [first.number]
    assert await service.find_pending_similar(now + timedelta(minutes=2)) == 0  # once
