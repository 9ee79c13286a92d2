"""验单 end to end, server on loopback with its background loops and the fake WeChat API: a resident's message
becomes an order, the department resolves it, the outbox dispatcher delivers exactly one survey to that resident
with the order number, the reply "5 很满意" rates it and the statistics count it."""
from __future__ import annotations

import asyncio

import httpx

from api.app import create_app
from api.demo.township import load_demo_data
from bot.chat import Simulator
from orders import models
from orders.services import Actor
from orders.stats import Stats
from tests.fake_wechat import FakeWeChat
from tests.support import running_server

ALICE = "o_alice_resident_0000000001"


def surveys_to(fake: FakeWeChat, openid: str) -> list[str]:
    texts = [m.body["text"]["content"] for m in fake.messages_to(openid) if m.path.endswith("/custom/send")]
    return [text for text in texts if "已办结" in text and "1–5" in text]


async def eventually(predicate, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("not reached in time")


async def test_resolve_then_one_survey_then_the_reply_rates_it_and_is_counted(settings, store, fake_classifier,
                                                                             fake_wechat):
    settings = settings.with_overrides(
        app={"run_background_tasks": True},
        wechat={"api_base": fake_wechat.base_url},
        outbox={"poll_seconds": 0.02, "backoff_base_seconds": 0.02, "backoff_max_seconds": 0.1},
    )
    app = create_app(settings, classifier=fake_classifier, store=store)
    async with running_server(app) as base, httpx.AsyncClient(timeout=10) as client:
        await load_demo_data()
        alice = Simulator(base, settings.wechat.token, ALICE)
        reply = await alice.send_async(alice.text_message("村口的路灯坏了一个星期,晚上很黑"), client)
        order = await models.Order.get(resident__openid=ALICE)
        assert order.number in reply and order.state == "dispatched"

        clerk = Actor.of_staff(await models.Staff.get(openid="demo-dept_staff-jianshe"))
        await app.ctx.orders.accept(order.number, clerk)
        await app.ctx.orders.resolve(order.number, clerk, "已更换灯泡,恢复照明")

        await eventually(lambda: surveys_to(fake_wechat, ALICE))
        await asyncio.sleep(0.2)  # several more dispatcher rounds: still one
        [survey] = surveys_to(fake_wechat, ALICE)
        assert order.number in survey and "已更换灯泡,恢复照明" in survey
        assert len(fake_wechat.messages_to(ALICE)) == 2  # the acceptance notice and the survey, nothing else
        assert len(fake_wechat.messages_to("demo-dept_staff-jianshe")) == 1  # the department heard of the order

        answer = await alice.send_async(alice.text_message("5 很满意"), client)
        assert order.number in answer and "5 分" in answer
        order = await models.Order.get(id=order.id)
        rating = await models.Rating.get(order_id=order.id)
        assert order.state == "verified" and (rating.score, rating.resolved, rating.comment) == (5, True, "很满意")

        stats = Stats(clock=app.ctx.clock)
        figures = await stats.summary(stats.period("today"))
        assert figures.counts["ratings"] == 1
        assert (figures.rates["satisfaction"].numerator, figures.rates["satisfaction"].denominator) == (1, 1)

        assert await models.Outbox.filter(status="pending").count() == 0
    assert not app.ctx.background.running  # stopped with the server
