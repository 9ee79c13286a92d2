"""What the workbench's order pages read: the router's top suggestions kept with each order (staff only), and the
list filters 即将超期 (due_soon) and 急难事 (urgent)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from orders import models
from orders.clock import FrozenClock
from orders.services import Actor
from tests.e2e.api_harness import GRID_WORKER, JIANSHE, SUPERVISOR, serve_api

RESIDENT = "oResident0001"
START = datetime(2026, 11, 24, 1, 0, tzinfo=timezone.utc)


@pytest.fixture
def clock():
    return FrozenClock(START)


@pytest.fixture
async def api(settings, store, fake_classifier, clock):
    async with serve_api(settings, store, fake_classifier, clock=clock) as api:
        yield api


async def numbers(api, **params) -> list[str]:
    response = await api.get(SUPERVISOR, "/orders", params=params)
    assert response.status_code == 200, response.text
    return sorted(item["number"] for item in response.json()["items"])


async def test_suggestions_are_kept_with_the_order_and_shown_to_staff_only(api):
    unsure = await api.submit("两口子吵架", openid=RESIDENT)
    stored = await models.Order.get(number=unsure)
    assert stored.suggestions == [{"category": "平安建设", "department": "sifasuo", "confidence": 0.41}]

    queue = (await api.get(GRID_WORKER, "/dispatch-queue")).json()["items"]
    assert [item["suggestions"] for item in queue if item["number"] == unsure] == [stored.suggestions]
    detail = (await api.get(SUPERVISOR, f"/orders/{unsure}")).json()
    assert detail["suggestions"] == stored.suggestions
    mine = (await api.get(RESIDENT, "/my/orders")).json()["items"]
    assert mine[0]["suggestions"] is None
    assert (await api.get(RESIDENT, f"/orders/{unsure}")).json()["suggestions"] is None

    # an order routed before suggestions were kept: its predicted pair stands in
    await models.Order.filter(number=unsure).update(suggestions=None)
    older = (await api.get(SUPERVISOR, f"/orders/{unsure}")).json()
    assert older["suggestions"] == [{"category": "平安建设", "department": "sifasuo", "confidence": 0.41}]


async def test_suggestions_keep_the_routers_three_that_the_taxonomy_knows(api):
    from tests.support import FakePrediction

    class ThreeWay(FakePrediction):
        suggestions = (("社会民生", "jianshe", 0.5), ("不存在的分类", "jianshe", 0.3), ("社会民生", "minzheng", 0.1),
                       ("生态环境", "huanbao", 0.05), ("社会民生", "renshe", 0.01))

    number = (await api.orders.submit(openid=RESIDENT, text="路边的事",
                                      prediction=ThreeWay("社会民生", "jianshe", "操心事", 0.5))).order.number
    assert (await models.Order.get(number=number)).suggestions == [
        {"category": "社会民生", "department": "jianshe", "confidence": 0.5},
        {"category": "社会民生", "department": "minzheng", "confidence": 0.1},
        {"category": "生态环境", "department": "huanbao", "confidence": 0.05}]


async def test_due_soon_is_an_open_order_whose_deadline_falls_within_the_warning_window(api, clock):
    clerk = Actor.of_staff(await models.Staff.get(openid=JIANSHE))
    waiting = await api.submit("村口第一盏路灯坏了", openid=RESIDENT)  # dispatched: accept within the hour
    handling = await api.submit("村口第二盏路灯坏了", openid=RESIDENT)
    await api.orders.accept(handling, clerk)  # resolve deadline days away
    late = await api.submit("村口第三盏路灯坏了", openid=RESIDENT)
    await models.Order.filter(number=late).update(overdue=True)  # already overdue: not "soon"
    queued = await api.submit("两口子吵架", openid=RESIDENT)  # no deadline yet

    assert await numbers(api, due_soon="true") == [waiting]
    assert await numbers(api, due_soon="false") == sorted([handling, late, queued])

    order = await models.Order.get(number=handling)
    clock.set(order.resolve_deadline - timedelta(hours=23))  # inside the 24-hour window; the others' passed
    await models.Order.filter(number=waiting).update(overdue=True)  # as the sweep would have marked it
    assert await numbers(api, due_soon="true") == [handling]
    clock.set(order.resolve_deadline + timedelta(minutes=1))  # passed: overdue, not due soon
    assert await numbers(api, due_soon="true") == []


async def test_the_warning_window_is_configuration(settings, store, fake_classifier, clock):
    narrow = settings.with_overrides(deadlines={"due_soon_hours": 0.5})
    async with serve_api(narrow, store, fake_classifier, clock=clock) as api:
        waiting = await api.submit("村口的路灯坏了", openid=RESIDENT)  # accept deadline in an hour
        assert await numbers(api, due_soon="true") == []
        clock.advance(minutes=31)
        assert await numbers(api, due_soon="true") == [waiting]


async def test_urgent_keeps_or_leaves_out_the_most_urgent_orders(api):
    fire = await api.submit("后山着火了", openid=RESIDENT)
    lamp = await api.submit("村口的路灯坏了", openid=RESIDENT)
    assert await numbers(api, urgent="true") == [fire]
    assert await numbers(api, urgent="false") == [lamp]
    assert await numbers(api, urgent="true", due_soon="true") == [fire]  # filters combine
    refused = await api.get(SUPERVISOR, "/orders", params={"urgent": "maybe"})
    assert refused.status_code == 422 and "urgent" in refused.json()["error"]["message"]
