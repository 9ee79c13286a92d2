"""Hardening of the /wechat door on both backends: fuzzed messages through the real server and dialog, the
store (Redis) failing mid-conversation and coming back, and the database failing mid-transaction or away."""
from __future__ import annotations

import contextlib
from datetime import datetime, timezone

import httpx
import pytest
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st

from api.app import create_app
from api.demo.township import load_demo_data
from bot.chat import Simulator, to_xml
from orders import models
from orders.clock import SHANGHAI, FrozenClock
from orders.store import StoreUnavailable
from tests.support import FakeClassifier, fail_inserts_into, running_server

START = datetime(2026, 11, 24, 16, 30, tzinfo=SHANGHAI).astimezone(timezone.utc)
ALICE = "o_alice_resident_0000000001"
BUSY = "系统繁忙,请稍后再试。"


class FlakyStore:
    """Wraps the test's store; while `down`, every call fails as a dead Redis does."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.down = False
        self.kind = getattr(inner, "kind", "?")

    def __getattr__(self, name):
        attribute = getattr(self.inner, name)
        if not callable(attribute):
            return attribute

        def call(*args, **kwargs):
            if self.down:
                raise StoreUnavailable("store down (test)")
            return attribute(*args, **kwargs)
        return call


async def table_counts() -> dict[str, int]:
    return {model.__name__: await model.all().count()
            for model in (models.Order, models.InboundMessage, models.Resident, models.OrderEvent, models.Outbox)}


@contextlib.asynccontextmanager
async def door(settings, store, clock=None, demo=True):
    app = create_app(settings.with_overrides(app={"run_background_tasks": False}), classifier=FakeClassifier(),
                     store=store, clock=clock or FrozenClock(START))
    async with running_server(app) as base, httpx.AsyncClient(base_url=base, timeout=10) as client:
        if demo:
            await load_demo_data()
        wechat = app.ctx.settings.wechat
        simulator = Simulator(base, wechat.token, ALICE, appid=wechat.appid,
                              now=lambda: app.ctx.clock.now().timestamp())
        yield app, client, simulator


async def post(client: httpx.AsyncClient, simulator: Simulator, fields: dict) -> httpx.Response:
    params, body = simulator.envelope(fields)
    return await client.post("/wechat", params=params, content=body.encode("utf-8", "surrogatepass"))


# ------------------------------------------------------------------------------------------ fuzz through the door
FIELDS = ["ToUserName", "FromUserName", "CreateTime", "MsgType", "Content", "MsgId", "Event", "EventKey",
          "MediaId", "PicUrl", "Location_X", "Location_Y", "Label", "Recognition"]
anything = (st.text(max_size=80) | st.integers(min_value=-2**66, max_value=2**66) | st.just("x" * 3000)
            | st.sampled_from(["text", "event", "image", "location", "voice", "CLICK", "subscribe", "REPORT"]))


@pytest.fixture
async def fuzz_door(settings, store):
    async with door(settings, store) as opened:
        yield opened


@hypothesis_settings(max_examples=40, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(fields=st.dictionaries(st.sampled_from(FIELDS), anything, max_size=8))
async def test_fuzzed_messages_never_get_a_500_and_refusals_write_nothing(fuzz_door, fields):
    app, client, simulator = fuzz_door
    before = await table_counts()
    response = await post(client, simulator, fields)
    assert response.status_code in (200, 400, 413), response.text
    if response.status_code != 200:
        assert "error" in response.json()
        assert await table_counts() == before


# what XML can carry at all (WeChat cannot send control characters or lone surrogates either)
XML_CHARACTERS = st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff") | st.sampled_from("\n\t")


@hypothesis_settings(max_examples=40, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(content=st.text(XML_CHARACTERS, min_size=1, max_size=600), event_key=st.text(XML_CHARACTERS, max_size=40))
async def test_any_text_or_menu_key_gets_a_readable_reply(fuzz_door, content, event_key):
    """Well-formed messages with hostile content go through the whole dialog: always a 200 and a reply."""
    app, client, simulator = fuzz_door
    app.ctx.clock.advance(seconds=61)  # stay under the per-resident rate limit
    for fields in (simulator.text_message(content), simulator.event_message("CLICK", event_key)):
        response = await post(client, simulator, fields)
        assert response.status_code == 200, response.text
        simulator.read_reply(response.text)  # parses, addressed to the resident


# ------------------------------------------------------------------------------------------ the store goes away
async def test_the_store_failing_mid_conversation_loses_nothing_and_recovers(settings, store):
    flaky = FlakyStore(store)
    async with door(settings, flaky) as (app, client, simulator):
        first = simulator.text_message("楼坝村的路灯坏了好几天")
        assert "工单号" in simulator.read_reply((await post(client, simulator, first)).text)
        flaky.down = True
        healthz = await client.get("/healthz")
        assert healthz.json()["store"].startswith("error")
        during = simulator.text_message("新滩村的路灯也坏了")
        replies = [simulator.read_reply((await post(client, simulator, during)).text) for _ in range(3)]
        assert len(set(replies)) == 1 and "工单号" in replies[0]  # the database constraint deduplicates
        # WeChat retries the first message while the store (which remembered it) is away: still one order
        assert "工单号" in simulator.read_reply((await post(client, simulator, first)).text)
        assert await models.Order.all().count() == 2
        flaky.down = False
        assert (await client.get("/healthz")).json()["store"] == "ok"
        # back: the retry made during the outage is answered the same, and new work flows
        assert simulator.read_reply((await post(client, simulator, during)).text) == replies[0]
        assert "工单号" in simulator.read_reply((await post(client, simulator, simulator.text_message("安富村路灯坏了"))).text)
        assert await models.Order.all().count() == 3
        assert await models.InboundMessage.all().count() == 3


async def test_the_rate_limit_holds_while_the_store_is_down(settings, store):
    """Each worker counts on its own while the store is away: a resident gets no more than the limit from one."""
    flaky = FlakyStore(store)
    async with door(settings, flaky) as (app, client, alice):
        limit = app.ctx.settings.bot.rate_limit_per_minute
        bob = Simulator(str(client.base_url), app.ctx.settings.wechat.token, "o_bob_resident_00000000002",
                        appid=app.ctx.settings.wechat.appid, now=lambda: app.ctx.clock.now().timestamp())
        flaky.down = True
        replies = [simulator_reply(alice, await post(client, alice, alice.text_message(f"楼坝村第{i}盏路灯坏了")))
                   for i in range(limit + 5)]
        assert all("工单号" in reply for reply in replies[:limit]), replies[:limit]
        assert all("太频繁" in reply for reply in replies[limit:]), replies[limit:]
        assert "工单号" in simulator_reply(bob, await post(client, bob, bob.text_message("新滩村的路灯坏了")))
        app.ctx.clock.advance(minutes=1)
        assert "工单号" in simulator_reply(alice, await post(client, alice, alice.text_message("安富村的路灯坏了")))
        assert await models.Order.filter(resident__openid=ALICE).count() == limit + 1


def simulator_reply(simulator: Simulator, response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return simulator.read_reply(response.text)


# ------------------------------------------------------------------------------------------ the database goes away
async def test_a_database_failure_mid_transaction_leaves_nothing_half_written(settings, store, monkeypatch):
    async with door(settings, store) as (app, client, simulator):
        before = await table_counts()
        # the order, its event and the inbound message are written before the outbox rows in the same transaction
        fail_inserts_into(monkeypatch, "outbox", ConnectionResetError("database connection lost (test)"))
        fields = simulator.text_message("楼坝村的路灯坏了好几天")
        response = await post(client, simulator, fields)
        assert response.status_code == 200 and simulator.read_reply(response.text) == BUSY
        assert await table_counts() == before
        monkeypatch.undo()
        # WeChat's retry of the same MsgId now succeeds, once
        assert "工单号" in simulator.read_reply((await post(client, simulator, fields)).text)
        assert "工单号" in simulator.read_reply((await post(client, simulator, fields)).text)
        assert await models.Order.all().count() == before["Order"] + 1
        assert await models.Outbox.all().count() > before["Outbox"]


async def test_with_the_database_away_wechat_says_try_later_and_readyz_is_503(settings, store):
    away = settings.with_overrides(database={"url": "postgres://postgres@127.0.0.1:1/sidan_away"})
    async with door(away, store, demo=False) as (app, client, simulator):
        response = await post(client, simulator, simulator.text_message("楼坝村的路灯坏了好几天"))
        assert response.status_code == 200 and "稍后再试" in simulator.read_reply(response.text)
        healthz = await client.get("/healthz")  # alive (the process serves), and it says what is wrong
        assert healthz.status_code == 200 and healthz.json()["database"].startswith("error")
        assert (await client.get("/readyz")).status_code == 503  # not ready: the load balancer looks elsewhere
