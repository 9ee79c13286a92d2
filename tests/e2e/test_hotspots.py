"""热点诉求 on loopback, on both backends: residents report one matter in one village through the fake WeChat, the
sweep tells the supervisor once (a subscribe message reaches the fake WeChat), and GET /api/v1/stats/hotspots lists
the hot spot with its orders — to supervisors, admins and the dashboard link only, without personal data, its
parameters checked in Chinese."""
from __future__ import annotations

import asyncio

import pytest

from bot.chat import Simulator
from classifiers.similarity import TextSimilarity
from orders import models
from tests.e2e.api_harness import ADMIN, GRID_WORKER, JIANSHE, SUPERVISOR, serve_api
from tests.e2e.test_privacy import leaked

HOTSPOTS = "/stats/hotspots"
LOUBA = (28.641, 104.406)  # grid XJB-01, 楼坝村
XINTAN = {"latitude": 28.641, "longitude": 104.426}  # grid XJB-02, 新滩村
LAMPS = ["三组路灯坏了,晚上一片黑", "三组的路灯不亮好几天了", "路灯坏了晚上看不见", "我们组路灯又不亮了"]


@pytest.fixture(scope="module")
def similarity(trained_router):
    return TextSimilarity(trained_router)


async def hotspot_messages(api) -> list[dict]:
    """What the fake WeChat received for the supervisor about hot spots."""
    return [message.body for message in api.wechat.messages_to(SUPERVISOR)
            if "热点诉求" in str((message.body or {}).get("data"))]


async def eventually(check, seconds: float = 20.0):
    deadline = asyncio.get_running_loop().time() + seconds
    while not (result := await check()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {check.__name__}")
        await asyncio.sleep(0.1)
    return result


async def test_hot_spot_alert(settings, store, fake_classifier, similarity):
    settings = settings.with_overrides(deadlines={"sweep_seconds": 0.2}, outbox={"poll_seconds": 0.05})
    async with serve_api(settings, store, fake_classifier, background=True, similarity=similarity) as api:
        wechat = api.app.ctx.settings.wechat
        numbers = []
        for i, text in enumerate(LAMPS[:3]):  # three residents of 楼坝村, each with a location and a sentence
            resident = Simulator(api.base, wechat.token, f"o_resident_hotspot_{i:03d}", appid=wechat.appid)
            await resident.send_async(resident.location_message(*LOUBA, "楼坝村三组"), api.client)
            reply = await resident.send_async(resident.text_message(text), api.client)
            order = await models.Order.filter(resident__openid=f"o_resident_hotspot_{i:03d}").get()
            assert order.number in (reply or "") and order.grid_id is not None
            numbers.append(order.number)

        [message] = await eventually(lambda: hotspot_messages(api))
        fields = {name: value["value"] for name, value in message["data"].items()}
        assert fields["thing2"] == "热点诉求:楼坝村3件" and fields["character_string1"] == numbers[0]

        body = (await api.get(SUPERVISOR, HOTSPOTS)).json()
        [spot] = body["hotspots"]
        assert spot["place"] == "楼坝村" and spot["count"] == 3 and spot["numbers"] == numbers
        assert "路灯" in spot["terms"] and spot["alerted_at"] is not None
        assert spot["first_reported_at"] <= spot["last_reported_at"]

        # A fourth report joins the hot spot: listed, not told again.
        fourth = await api.submit(LAMPS[3], openid="o_resident_hotspot_004", location=dict(zip(
            ("latitude", "longitude"), LOUBA)))
        assert await _listed(api, fourth)

        async def joined() -> bool:  # a sweep after the fourth report saw the hot spot told of, grown
            return await models.HotspotAlertOrder.all().count() == 4

        await eventually(joined)
        await asyncio.sleep(0.5)  # the dispatcher's polls: anything queued would be sent by now
        assert len(await hotspot_messages(api)) == 1
        assert await models.HotspotAlert.all().count() == 1
        assert await models.Outbox.filter(kind="notify_hotspot").count() == 1  # the demo's one bound supervisor


async def _listed(api, number: str) -> bool:
    body = (await api.get(SUPERVISOR, HOTSPOTS)).json()
    return any(number in spot["numbers"] for spot in body["hotspots"])


async def test_the_hotspots_list_is_for_supervisors_without_personal_data(settings, store, fake_classifier,
                                                                          similarity):
    async with serve_api(settings, store, fake_classifier, similarity=similarity) as api:
        louba = dict(zip(("latitude", "longitude"), LOUBA))
        for i, text in enumerate(LAMPS[:3]):
            await api.submit(f"{text},电话13912345678", openid=f"oResident{i}", location=louba)
        await api.submit(LAMPS[0], openid="oResident9", location=XINTAN)  # one in 新滩村: no hot spot there
        cancelled = await api.submit(LAMPS[1], openid="oResident8", location=XINTAN)
        await api.post("oResident8", f"/orders/{cancelled}/cancel")

        response = await api.get(SUPERVISOR, HOTSPOTS)
        assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
        body = response.json()
        assert (body["window_hours"], body["min_reports"]) == (6, 3)
        assert [spot["place"] for spot in body["hotspots"]] == ["楼坝村"]
        assert leaked(body) == [] and "139****5678" in body["hotspots"][0]["summary"]
        # Two reports make a hot spot when asked for; 新滩村's cancelled one does not count.
        two = (await api.get(SUPERVISOR, HOTSPOTS, params={"min_reports": "2", "hours": "1"})).json()
        assert [spot["place"] for spot in two["hotspots"]] == ["楼坝村"] and two["window_hours"] == 1

        assert (await api.get(ADMIN, HOTSPOTS)).status_code == 200
        for caller in (JIANSHE, GRID_WORKER, "oResident0"):
            refused = await api.get(caller, HOTSPOTS)
            assert refused.status_code == 403 and "督办员" in refused.json()["error"]["message"]
        assert (await api.client.get("/api/v1" + HOTSPOTS)).status_code == 401

        for params, words in [({"hours": "0"}, "hours 应在 1 到 168 之间"), ({"hours": "一天"}, "hours 应为整数"),
                              ({"min_reports": "1"}, "min_reports 应在 2 到 100 之间"),
                              ({"limit": "1000"}, "limit 应在 1 到 100 之间")]:
            bad = await api.get(SUPERVISOR, HOTSPOTS, params=params)
            assert bad.status_code == 422 and words in bad.json()["error"]["message"], (params, bad.text)
        assert await models.HotspotAlert.all().count() == 0  # reading tells nobody


async def test_a_dashboard_link_reads_the_hotspots(settings, store, fake_classifier, similarity):
    from api.auth import dashboard_token

    async with serve_api(settings, store, fake_classifier, similarity=similarity) as api:
        supervisor = await models.Staff.get(openid=SUPERVISOR)
        link = dashboard_token(api.app.ctx.settings, supervisor, 1)
        response = await api.client.get("/api/v1" + HOTSPOTS, headers={"Authorization": f"Bearer {link}"})
        assert response.status_code == 200 and response.json()["hotspots"] == []


async def test_without_a_model_the_hotspots_say_so(settings, store, fake_classifier):
    async with serve_api(settings, store, fake_classifier) as api:
        response = await api.get(SUPERVISOR, HOTSPOTS)
        assert response.status_code == 503 and "分类模型" in response.json()["error"]["message"]
