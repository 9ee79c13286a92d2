"""The WeChat door speaks for the township a file set up: its name in the welcome, its prefix on the numbers
given out and read back; the statistics' title too. Config's app.township / app.order_prefix until then."""
from __future__ import annotations

import pytest

from orders import models
from orders.clock import FrozenClock
from orders.township import parse_township
from orders.township.apply import apply_township
from tests.integration.test_wechat_bot import ALICE, START, open_door
from tests.support import REPO

XINAN_TEXT = (REPO / "tests" / "data" / "xinan-township.toml").read_text(encoding="utf-8")


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


async def test_the_bot_welcomes_and_numbers_for_the_applied_township(settings, store, clock):
    async with open_door(settings, store, clock, demo=False) as door:
        alice = door.resident()
        assert "欢迎关注向家坝镇" in await alice.event("subscribe")  # config's name: no township applied yet
        await apply_township(parse_township(XINAN_TEXT), now=START)
        door.app.ctx.orders.identity.forget()  # as every worker does within a minute
        clock.advance(seconds=5)  # another event (WeChat's retries of one are answered once)
        assert "欢迎关注新安镇" in await alice.event("subscribe")
        reply = await alice.says("村口的路灯坏了")
        assert "工单号 XA20261124-0001" in reply
        # the resident quotes the number back with the township's prefix, in any case
        assert await alice.says("取消 xa20261124-0001") == "工单 XA20261124-0001 已取消。如果问题还在,随时再发给我们。"
        order = await models.Order.get(number="XA20261124-0001").prefetch_related("resident")
        assert order.state == "cancelled" and order.resident.openid == ALICE
