"""One resident, two doors, over HTTP on loopback with the server's own background loops, on SQLite + in-process store
and PostgreSQL + Redis: a message to /wechat, the unionid fetched from the fake WeChat in the background, and the
mini-program login sees the official account's orders; where WeChat gives no unionid, the code the bot gives links
them; the contact phone a resident leaves reaches those who handle the order, masked for the others."""
from __future__ import annotations

import asyncio
import re

import pytest

from bot.chat import Simulator
from orders import models
from tests.e2e.api_harness import ADMIN, JIANSHE, SUPERVISOR, serve_api

OA, MINI, UNION = "o_official_account_0000001", "o_mini_program_00000000001", "union-two-doors-1"


@pytest.fixture
async def api(settings, store, fake_classifier):
    settings = settings.with_overrides(media={"fetch_poll_seconds": 0.05})
    async with serve_api(settings, store, fake_classifier, background=True) as api:
        yield api


async def says(api, openid: str, text: str) -> str:
    wechat = api.app.ctx.settings.wechat
    simulator = Simulator(api.base, wechat.token, openid, appid=wechat.appid)
    return await simulator.send_async(simulator.text_message(text), api.client) or ""


async def looked_up(openid: str, seconds: float = 15.0) -> models.UnionidLookup:
    for _ in range(int(seconds / 0.05)):
        job = await models.UnionidLookup.get_or_none(resident__openid=openid)
        if job is not None and job.status != "pending":
            return job
        await asyncio.sleep(0.05)
    raise AssertionError("the unionid was not looked up in time")


async def my_orders(api, openid: str) -> list[str]:
    response = await api.get(openid, "/my/orders")
    assert response.status_code == 200, response.text
    return [item["number"] for item in response.json()["items"]]


async def test_the_unionid_fetched_in_the_background_shows_official_account_orders_in_the_mini_program(api):
    api.wechat.unionids = {OA: UNION, MINI: UNION}
    reply = await says(api, OA, "村口的路灯坏了一个星期了")
    [order] = await models.Order.filter(resident__openid=OA)
    assert order.number in reply
    job = await looked_up(OA)
    assert job.status == "done" and (await models.Resident.get(openid=OA)).unionid == UNION
    assert [r.query["openid"] for r in api.wechat.user_info_requests()] == [OA]

    assert await my_orders(api, MINI) == [order.number]  # the mini-program's first login
    official = await models.Resident.get(openid=OA)
    assert official.miniapp_openid == MINI and not await models.Resident.filter(openid=MINI).exists()
    await says(api, OA, "谢谢")  # more messages: WeChat is not asked again
    await asyncio.sleep(0.3)
    assert len(api.wechat.user_info_requests()) == 1


async def test_a_mini_program_row_made_first_is_merged_when_the_unionid_arrives_and_its_token_follows(api):
    mini, official, union = "o_mini_program_00000000002", "o_official_account_0000002", "union-two-doors-2"
    api.wechat.unionids = {mini: union}  # the official account's answer comes later
    assert await my_orders(api, mini) == []  # its own row, with the unionid
    api.wechat.unionids[official] = union
    await says(api, official, "河边的垃圾好几天没人收了")
    [order] = await models.Order.filter(resident__openid=official)
    await looked_up(official)
    mini_row = await models.Resident.get(openid=mini)
    assert mini_row.merged_into_id == order.resident_id
    assert await my_orders(api, mini) == [order.number]  # the token issued before the merge leads there too
    api.tokens.clear()
    assert await my_orders(api, mini) == [order.number]
    [link] = await models.ResidentLink.all()
    assert (link.via, link.from_openid, link.to_openid) == ("unionid", mini, official)


async def test_without_a_unionid_the_code_the_bot_gives_links_the_mini_program(api):
    official, mini = "o_official_account_0000003", "o_mini_program_00000000003"
    await says(api, official, "村口的路灯坏了一个星期了")
    [order] = await models.Order.filter(resident__openid=official)
    assert await my_orders(api, mini) == []
    reply = await says(api, official, "绑定小程序")
    assert "关联码" in reply and "10 分钟内有效" in reply
    code = re.search(r"\d{6}", reply)[0]

    before = (await models.ResidentLink.all().count(), await models.Resident.filter(merged_into_id__not_isnull=True)
              .count())
    wrong = "000000" if code != "000000" else "111111"
    for bad, status, words in ((wrong, 422, "关联码不正确或已过期"), ("abc", 422, "6 位数字")):
        refused = await api.post(mini, "/auth/link", {"code": bad})
        assert refused.status_code == status and words in refused.json()["error"]["message"], refused.text
    assert (await models.ResidentLink.all().count(), await models.Resident.filter(merged_into_id__not_isnull=True)
            .count()) == before
    assert (await api.post(None, "/auth/link", {"code": code})).status_code == 401

    answer = await api.post(mini, "/auth/link", {"code": code})
    assert answer.status_code == 200, answer.text
    assert answer.json()["linked"] is True and "关联成功" in answer.json()["message"]
    assert await my_orders(api, mini) == [order.number]
    again = await api.post(mini, "/auth/link", {"code": code})  # used once
    assert again.status_code == 422 and "关联码" in again.json()["error"]["message"]
    api.tokens.clear()  # a fresh login from the mini-program lands on the same resident
    assert await my_orders(api, mini) == [order.number]


async def test_the_contact_phone_reaches_those_who_handle_the_order_and_is_masked_for_the_others(api):
    reply = await says(api, OA, "我的电话 139 1234 5678")
    assert "已记下您的联系电话 139****5678" in reply
    await says(api, OA, "村口的路灯坏了一个星期了")
    [order] = await models.Order.filter(resident__openid=OA)
    assert (await models.Resident.get(openid=OA)).contact_phone == "13912345678"
    seen = {}
    for reader in (JIANSHE, SUPERVISOR, ADMIN):
        response = await api.get(reader, f"/orders/{order.number}")
        assert response.status_code == 200, response.text
        seen[reader] = response.json()["contact_phone"]
    assert seen == {JIANSHE: "13912345678", SUPERVISOR: "13912345678", ADMIN: "139****5678"}
    mine = await api.get(OA, f"/orders/{order.number}")
    assert mine.json()["contact_phone"] == "13912345678"
