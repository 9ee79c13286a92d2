"""The read side (orders.queries) on SQLite and PostgreSQL: scope as a query equals the use cases' can_see,
filters, local-day periods, keyset pages, the dispatch queue and the detail."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from api.demo.township import load_demo_data
from orders import models, queries
from orders.clock import FrozenClock
from orders.errors import InvalidInput, NotFound
from orders.lifecycle import Role, State
from orders.queries import OrderFilters
from orders.services import Actor, OrderService

LOU_BA = {"latitude": 28.641, "longitude": 104.406}  # grid XJB-01
YUN_FU = {"latitude": 28.625, "longitude": 104.425}  # grid XJB-04


@pytest.fixture
async def clock():
    return FrozenClock(datetime(2026, 11, 24, 1, 0, tzinfo=timezone.utc))  # 09:00 in Shanghai


@pytest.fixture
async def service(orm, settings, fake_classifier, clock):
    await load_demo_data()
    return OrderService(settings, fake_classifier, clock=clock)


async def staff(openid: str) -> Actor:
    return Actor.of_staff(await models.Staff.get(openid=openid))


async def everything(actor: Actor, filters: OrderFilters = OrderFilters(), limit: int = 3) -> list[str]:
    numbers, cursor = [], None
    while True:
        page = await queries.list_orders(actor, filters, cursor=cursor, limit=limit)
        numbers += [order.number for order in page.orders]
        if page.next_cursor is None:
            return numbers
        cursor = page.next_cursor


async def a_township(service: OrderService) -> None:
    await service.submit(openid="oA", text="村口的路灯坏了", location=LOU_BA)  # jianshe, XJB-01
    await service.submit(openid="oA", text="低保怎么申请")  # minzheng, no grid
    await service.submit(openid="oB", text="两口子吵架", location=LOU_BA)  # unsure, XJB-01
    await service.submit(openid="oB", text="邻居吵架", location=YUN_FU)  # unsure, XJB-04
    await service.submit(openid="oC", text="有人吵架")  # unsure, no grid
    await service.submit(openid="oC", text="路灯又坏了", location=YUN_FU)  # jianshe, XJB-04


async def test_every_readers_list_is_exactly_what_can_see_admits(service):
    await a_township(service)
    residents = [Actor.of_resident(r) for r in await models.Resident.all()]
    readers = residents + [await staff(openid) for openid in (
        "demo-admin", "demo-supervisor", "demo-grid_worker", "demo-grid_worker-XJB-04", "demo-dept_staff-jianshe",
        "demo-dept_staff-minzheng", "demo-dept_staff-anjian")]
    readers.append(Actor(Role.DEPT_STAFF, 999, "无部门的人"))
    everyone = await models.Order.all().order_by("-id")
    for reader in readers:
        expected = [order.number for order in everyone if OrderService.can_see(reader, order)]
        assert await everything(reader) == expected, reader
    assert len(await everything(await staff("demo-dept_staff-jianshe"))) == 2


async def test_a_grid_worker_sees_their_grid_in_any_state_and_of_the_rest_only_the_dispatch_queue(service):
    await a_township(service)
    clerk = await staff("demo-dept_staff-minzheng")
    await service.cancel((await service.submit(openid="oD", text="有人在吵架")).order.number,
                         Actor.of_resident(await models.Resident.get(openid="oD")))  # ungridded, closed
    returned = (await service.submit(openid="oD", text="低保的事")).order.number  # ungridded, dispatched ...
    await service.return_(returned, clerk, "不归我们")  # ... and back in the queue
    accepted = (await service.submit(openid="oD", text="低保又停了", location=LOU_BA)).order.number
    await service.accept(accepted, clerk)  # in the worker's grid, being handled
    worker = await staff("demo-grid_worker")  # XJB-01
    seen = {order.text for order in await models.Order.all() if OrderService.can_see(worker, order)}
    assert seen == {"村口的路灯坏了", "两口子吵架", "有人吵架", "低保的事", "低保又停了"}
    assert {o.text for o in (await queries.list_orders(worker)).orders} == seen
    unplaced = Actor(Role.GRID_WORKER, worker.id, "没有网格的网格员")
    assert {o.text for o in (await queries.list_orders(unplaced)).orders} == {"有人吵架", "低保的事"}
    for text in ("低保怎么申请", "有人在吵架", "邻居吵架"):  # no grid and dispatched, no grid and closed, another grid
        with pytest.raises(NotFound):
            await queries.order_detail(worker, (await models.Order.get(text=text)).number)


async def test_filters_narrow_the_list(service, clock):
    await a_township(service)
    supervisor = await staff("demo-supervisor")
    assert len(await everything(supervisor, OrderFilters(states=(State.SUBMITTED,)))) == 3
    assert len(await everything(supervisor, OrderFilters(states=(State.SUBMITTED, State.DISPATCHED)))) == 6
    assert len(await everything(supervisor, OrderFilters(department="jianshe"))) == 2
    assert len(await everything(supervisor, OrderFilters(grid="XJB-04"))) == 2
    assert len(await everything(supervisor, OrderFilters(category="社会民生"))) == 3  # unsure ones keep the guess
    assert len(await everything(supervisor, OrderFilters(text="吵架"))) == 3
    assert len(await everything(supervisor, OrderFilters(text="100%"))) == 0  # LIKE wildcards are literal
    first = (await models.Order.all().order_by("id").first()).number
    assert await everything(supervisor, OrderFilters(text=first[-6:])) == [first]
    await models.Order.filter(number=first).update(overdue=True)
    assert await everything(supervisor, OrderFilters(overdue=True)) == [first]
    assert len(await everything(supervisor, OrderFilters(overdue=False))) == 5


async def test_periods_are_local_days(service, clock):
    clock.set(datetime(2026, 11, 23, 15, 30, tzinfo=timezone.utc))  # 23:30 on the 23rd in Shanghai
    late = (await service.submit(openid="oA", text="路灯坏了")).order.number
    clock.set(datetime(2026, 11, 23, 16, 30, tzinfo=timezone.utc))  # 00:30 on the 24th in Shanghai
    early = (await service.submit(openid="oA", text="路灯坏了")).order.number
    supervisor = await staff("demo-supervisor")
    assert await everything(supervisor, OrderFilters(until=date(2026, 11, 23))) == [late]
    assert await everything(supervisor, OrderFilters(since=date(2026, 11, 24))) == [early]
    both = OrderFilters(since=date(2026, 11, 23), until=date(2026, 11, 24))
    assert await everything(supervisor, both) == [early, late]
    with pytest.raises(InvalidInput):
        await queries.list_orders(supervisor, OrderFilters(since=date(2026, 11, 25), until=date(2026, 11, 24)))


async def test_pages_do_not_shift_when_orders_arrive_meanwhile(service):
    for i in range(5):
        await service.submit(openid="oA", text=f"第{i}盏路灯坏了")
    supervisor = await staff("demo-supervisor")
    first = await queries.list_orders(supervisor, limit=2)
    await service.submit(openid="oA", text="新来的路灯坏了")
    second = await queries.list_orders(supervisor, cursor=first.next_cursor, limit=2)
    third = await queries.list_orders(supervisor, cursor=second.next_cursor, limit=2)
    seen = [o.number for page in (first, second, third) for o in page.orders]
    assert len(seen) == len(set(seen)) == 5 and third.next_cursor is None


async def test_the_dispatch_queue_is_oldest_first_and_only_what_waits_for_a_person(service):
    await a_township(service)
    worker = await staff("demo-grid_worker")
    queue = await queries.dispatch_queue(worker)
    assert [o.text for o in queue.orders] == ["两口子吵架", "有人吵架"]
    clerk = await staff("demo-dept_staff-jianshe")
    lamp = (await models.Order.get(text="村口的路灯坏了")).number
    await service.return_(lamp, clerk, "不归我们")
    queue = await queries.dispatch_queue(worker)
    assert [o.text for o in queue.orders] == ["村口的路灯坏了", "两口子吵架", "有人吵架"]
    supervisor_queue = await queries.dispatch_queue(await staff("demo-supervisor"))
    assert len(supervisor_queue.orders) == 4


async def test_the_detail_has_the_timeline_in_order_and_hides_out_of_scope_orders(service):
    number = (await service.submit(openid="oA", text="村口的路灯坏了")).order.number
    clerk = await staff("demo-dept_staff-jianshe")
    await service.accept(number, clerk)
    await service.progress(number, clerk, "已派电工", photos=["m1"])
    detail = await queries.order_detail(clerk, number)
    assert [e.action for e in detail.events] == ["submit", "dispatch", "accept", "progress"]
    assert detail.order.department.code == "jianshe"  # loaded with the order, no lazy query
    with pytest.raises(NotFound):
        await queries.order_detail(await staff("demo-dept_staff-minzheng"), number)
    with pytest.raises(NotFound):
        await queries.order_detail(clerk, "YK20990101-0001")


async def test_a_broken_cursor_is_refused_clearly(service):
    supervisor = await staff("demo-supervisor")
    for cursor in ("garbage", "b29wcw", queries.encode_cursor(5)[:-1] + "!", "bzE6MTIzNDU2Nzg5MDEyMzQ1"):
        with pytest.raises(InvalidInput):
            await queries.list_orders(supervisor, cursor=cursor)
