"""The outbox through the real notifier and WeChat client to the fake WeChat server on loopback: the server down
for a while, an expired token, the 48-hour window, and the use cases' own rows end to end."""
from __future__ import annotations

import asyncio
import random
from datetime import timedelta

import pytest

from api.demo.township import load_demo_data
from bot.notifier import Notifier
from bot.wechat_api import WeChatClient
from orders import models
from orders.clock import Clock
from orders.dispatcher import Dispatcher
from orders.services import Actor, OrderService


@pytest.fixture
async def wired(settings, store, fake_wechat, orm):
    settings = settings.with_overrides(wechat={"api_base": fake_wechat.base_url, "api_timeout_seconds": 0.4})
    client = WeChatClient(settings, store)
    yield settings, Notifier(client, settings)
    await client.close()


def fast_dispatcher(settings, notifier, **options) -> Dispatcher:
    options = {"poll_seconds": 0.02, "backoff_base_seconds": 0.02, "backoff_max_seconds": 0.2, "max_attempts": 100,
               "rng": random.Random(3), **options}
    return Dispatcher(settings, notifier, Clock(), **options)


async def add_resident_rows(count: int) -> list[int]:
    now = Clock().now()
    ids = []
    for index in range(count):
        row = await models.Outbox.create(
            kind="accepted", recipient=f"oResident{index:04d}", next_attempt_at=now, created_at=now,
            payload={"number": f"YK20261124-{index:04d}", "to": "resident", "text": "路灯坏了", "department": "村镇建设办"})
        ids.append(row.id)
    return ids


async def wait_until(predicate, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if await predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached in time")


async def test_while_wechat_is_down_sends_are_retried_and_all_arrive_once_it_is_back(wired, fake_wechat):
    settings, notifier = wired
    ids = await add_resident_rows(6)
    fake_wechat.stop()
    worker = fast_dispatcher(settings, notifier)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await wait_until(lambda: _attempted(ids[0], at_least=3))
    assert await models.Outbox.filter(status="sent").count() == 0
    assert await models.Outbox.filter(status="dead").count() == 0
    fake_wechat.start()  # back, same port
    await wait_until(lambda: _all_sent(ids))
    stop.set()
    await asyncio.wait_for(task, 5)
    for index in range(6):
        [message] = fake_wechat.messages_to(f"oResident{index:04d}")  # exactly one each
        assert message.body["data"]["keyword1"]["value"] == f"YK20261124-{index:04d}"
    assert len(fake_wechat.messages()) == 6


async def _attempted(row_id: int, at_least: int) -> bool:
    return (await models.Outbox.get(id=row_id)).attempts >= at_least


async def _all_sent(ids: list[int]) -> bool:
    return await models.Outbox.filter(id__in=ids, status="sent").count() == len(ids)


async def test_an_expired_token_is_refreshed_once_then_the_message_goes(wired, fake_wechat):
    settings, notifier = wired
    await notifier.client.access_token()
    assert fake_wechat.token_issued == 1
    fake_wechat.expire_token_next(1)
    [row_id] = await add_resident_rows(1)
    report = await fast_dispatcher(settings, notifier).run_until_idle()
    assert report.sent == 1 and report.retried == 0
    assert fake_wechat.token_issued == 2
    assert len(fake_wechat.messages_to("oResident0000")) == 1
    assert (await models.Outbox.get(id=row_id)).attempts == 1


async def test_a_slow_answer_times_out_and_is_retried(wired, fake_wechat):
    settings, notifier = wired
    await notifier.client.access_token()
    fake_wechat.delay_next(1, 0.7)  # longer than api_timeout_seconds
    [row_id] = await add_resident_rows(1)
    worker = fast_dispatcher(settings, notifier)
    assert (await worker.run_once()).retried == 1
    await asyncio.sleep(0.25)
    await worker.run_until_idle()
    assert (await models.Outbox.get(id=row_id)).status == "sent"
    assert len(fake_wechat.messages_to("oResident0000")) >= 1  # the slow one may have landed too: at least once


async def test_the_use_cases_rows_reach_the_right_people_on_the_right_channel(wired, fake_wechat, fake_classifier):
    settings, notifier = wired
    await load_demo_data()
    service = OrderService(settings, fake_classifier)
    order = (await service.submit(openid="oVillager", text="村口的路灯坏了")).order
    await models.Resident.filter(openid="oVillager").update(last_message_at=Clock().now() - timedelta(hours=1))
    clerk = Actor.of_staff(await models.Staff.get(openid="demo-dept_staff-jianshe"))
    await service.accept(order.number, clerk)
    await service.resolve(order.number, clerk, "已更换灯泡")
    report = await fast_dispatcher(settings, notifier).run_until_idle()
    assert report.sent == 3 and report.dead == 0
    [dispatched] = fake_wechat.messages_to("demo-dept_staff-jianshe")
    assert dispatched.path == "/cgi-bin/message/subscribe/send"
    assert dispatched.body["data"]["character_string1"]["value"] == order.number
    to_resident = fake_wechat.messages_to("oVillager")
    assert [m.path for m in to_resident] == ["/cgi-bin/message/custom/send"] * 2  # inside the 48-hour window
    accepted, survey = (m.body["text"]["content"] for m in to_resident)
    assert "接单" in accepted and order.number in accepted
    assert "已办结" in survey and "已更换灯泡" in survey and order.number in survey
