"""热点诉求 alerts from the sweep, on SQLite and PostgreSQL: reports of one matter from one village within the window
tell every supervisor once — not again on the next sweep, when the hot spot grows, after a restart, or when two
workers look at the same moment; cancelled and invalid reports, other villages and older reports do not count."""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest

from api.demo.township import load_demo_data
from classifiers.similarity import TextSimilarity
from orders import models
from orders.clock import SHANGHAI, FrozenClock
from orders.hotspot_alerts import HOTSPOT_ALERT, HotspotAlerts
from orders.services import Actor, OrderService
from orders.sweep import Sweeper

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=SHANGHAI).astimezone(timezone.utc)
LOUBA = {"latitude": 28.641, "longitude": 104.406, "label": "楼坝村"}  # grid XJB-01
XINTAN = {"latitude": 28.641, "longitude": 104.426, "label": "新滩村"}  # grid XJB-02
LAMPS = ["三组路灯坏了,晚上一片黑", "三组的路灯不亮好几天了", "路灯坏了晚上看不见", "我们组路灯又不亮了"]


@pytest.fixture(scope="module")
def similarity(trained_router):
    return TextSimilarity(trained_router)


@pytest.fixture
async def clock():
    return FrozenClock(T0)


@pytest.fixture
async def service(orm, settings, fake_classifier, clock):
    await load_demo_data()
    return OrderService(settings, fake_classifier, clock=clock)


@pytest.fixture
def sweeper(service, similarity):
    return Sweeper(service, hotspots=HotspotAlerts.for_service(service, similarity))


async def report(service, clock, text: str, location=LOUBA, resident: int = 1) -> str:
    clock.advance(minutes=10)
    return (await service.submit(openid=f"oResident{resident:03d}", text=text, location=location)).order.number


async def supervisors() -> set[str]:
    return set(await models.Staff.filter(role="supervisor", active=True, openid__isnull=False)
               .values_list("openid", flat=True))


async def alerts() -> list[models.Outbox]:
    return list(await models.Outbox.filter(kind=HOTSPOT_ALERT).order_by("id"))


async def test_three_reports_of_one_matter_in_one_village_tell_every_supervisor_once(service, sweeper, clock,
                                                                                      similarity):
    numbers = [await report(service, clock, text, resident=i) for i, text in enumerate(LAMPS[:2])]
    await report(service, clock, "家里停水一整天了", resident=5)  # the same village, another matter
    await report(service, clock, LAMPS[2], location=XINTAN, resident=6)  # the same matter, another village
    assert (await sweeper.run_once()).hotspots_alerted == 0  # two reports: not yet
    numbers.append(await report(service, clock, LAMPS[2], resident=3))

    assert (await sweeper.run_once()).hotspots_alerted == 1
    sent = await alerts()
    assert {row.recipient for row in sent} == await supervisors() and len(sent) == len(await supervisors()) > 0
    payload = sent[0].payload
    assert payload["village"] == "楼坝村" and payload["count"] == 3 and payload["numbers"] == numbers
    assert "路灯" in payload["terms"] and payload["to"] == "staff"
    [alert] = await models.HotspotAlert.all()
    assert (alert.village, alert.reports, alert.notified) == ("楼坝村", 3, len(sent))

    # Once: the next sweep, the hot spot grown by a fourth report, a restarted worker.
    assert (await sweeper.run_once()).hotspots_alerted == 0
    numbers.append(await report(service, clock, LAMPS[3], resident=4))
    assert (await sweeper.run_once()).hotspots_alerted == 0
    restarted = Sweeper(service, hotspots=HotspotAlerts.for_service(service, similarity))
    assert (await restarted.run_once()).hotspots_alerted == 0
    assert len(await alerts()) == len(sent)
    members = await models.HotspotAlertOrder.filter(alert_id=alert.id).values_list("order__number", flat=True)
    assert sorted(members) == sorted(numbers)  # the fourth joined the hot spot told of


async def test_two_workers_looking_at_once_tell_the_supervisors_once(service, clock, similarity):
    for i, text in enumerate(LAMPS[:3]):
        await report(service, clock, text, resident=i)
    workers = [HotspotAlerts.for_service(service, similarity) for _ in range(3)]
    results = await asyncio.gather(*(worker.check() for worker in workers))
    assert sum(result.alerted for result in results) == 1
    assert await models.HotspotAlert.all().count() == 1
    assert len(await alerts()) == len(await supervisors())


async def test_reports_older_than_the_window_do_not_count(service, sweeper, clock):
    await report(service, clock, LAMPS[0], resident=1)
    await report(service, clock, LAMPS[1], resident=2)
    clock.advance(hours=service.settings.hotspots.window_hours)
    await report(service, clock, LAMPS[2], resident=3)
    assert (await sweeper.run_once()).hotspots_alerted == 0
    assert await alerts() == []


async def test_cancelled_reports_do_not_count(service, sweeper, clock):
    numbers = [await report(service, clock, text, resident=i) for i, text in enumerate(LAMPS[:3])]
    resident = Actor.of_resident(await models.Resident.get(openid="oResident000"))
    await service.cancel(numbers[0], resident)
    assert (await sweeper.run_once()).hotspots_alerted == 0
    assert await alerts() == []


async def test_a_village_named_in_the_text_places_a_report_sent_without_a_location(service, sweeper, clock):
    for i, text in enumerate(LAMPS[:3]):
        await report(service, clock, f"新滩村{text}", location=None, resident=i)
    assert (await sweeper.run_once()).hotspots_alerted == 1
    assert {row.payload["village"] for row in await alerts()} == {"新滩村"}


async def test_no_alert_when_alerts_are_turned_off(orm, settings, fake_classifier, clock, similarity):
    await load_demo_data()
    quiet = OrderService(settings.with_overrides(hotspots={"alert": False}), fake_classifier, clock=clock)
    for i, text in enumerate(LAMPS[:3]):
        await report(quiet, clock, text, resident=i)
    assert (await Sweeper(quiet, hotspots=HotspotAlerts.for_service(quiet, similarity)).run_once()) \
        .hotspots_alerted == 0
    assert await alerts() == []


def test_the_server_compares_reports_with_its_router_and_not_with_a_stand_in(trained_router, fake_classifier):
    from api.resources import load_similarity

    assert isinstance(load_similarity(trained_router), TextSimilarity)
    assert load_similarity(fake_classifier) is None  # a test double routes, it cannot compare: no hot spots
