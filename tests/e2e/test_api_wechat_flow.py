"""The whole loop over HTTP on loopback, both doors: a resident writes to the official account (/wechat, signed
XML), staff work the order in the mini-program API, the resident rates it in the API, and the timeline shows
every step with who did it and when. On SQLite and on PostgreSQL + Redis."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from bot.chat import Simulator
from orders import models
from tests.e2e.api_harness import GRID_WORKER, JIANSHE, serve_api

RESIDENT = "o_resident_wechat_000000001"


@pytest.fixture
async def api(settings, store, fake_classifier):
    async with serve_api(settings, store, fake_classifier) as api:
        yield api


async def says(api, text: str, openid: str = RESIDENT) -> str | None:
    wechat = api.app.ctx.settings.wechat
    simulator = Simulator(api.base, wechat.token, openid, appid=wechat.appid)
    return await simulator.send_async(simulator.text_message(text), api.client)


async def newest_order_of(openid: str) -> models.Order:
    return await models.Order.filter(resident__openid=openid).order_by("-id").first()


def assert_timeline(detail: dict, expected: list[tuple[str, str]], started: datetime) -> None:
    steps = [(entry["action"], entry["actor"]["role"]) for entry in detail["timeline"]]
    assert steps == expected
    moments = [datetime.fromisoformat(entry["at"]) for entry in detail["timeline"]]
    assert moments == sorted(moments)
    assert started - timedelta(seconds=1) <= moments[0] and moments[-1] <= datetime.now(timezone.utc)
    assert all(entry["actor"]["name"] for entry in detail["timeline"])


async def test_a_confident_report_reaches_the_department_and_comes_back_rated(api):
    started = datetime.now(timezone.utc)
    reply = await says(api, "村口的路灯坏了一个星期了,晚上很黑")
    order = await newest_order_of(RESIDENT)
    assert order is not None and order.number in (reply or "")
    number = order.number

    listed = (await api.get(JIANSHE, "/orders", params={"state": "dispatched"})).json()["items"]
    assert [item["number"] for item in listed] == [number]
    assert (await api.get(GRID_WORKER, "/dispatch-queue")).json()["items"] == []  # routed already

    assert (await api.post(JIANSHE, f"/orders/{number}/accept")).status_code == 200
    assert (await api.post(JIANSHE, f"/orders/{number}/progress",
                           {"note": "电工已到现场", "notify_resident": True})).status_code == 200
    assert (await api.post(JIANSHE, f"/orders/{number}/resolve", {"result": "已更换灯泡"})).status_code == 200
    rated = await api.post(RESIDENT, f"/orders/{number}/rate", {"score": 4, "comment": "修得挺快"})
    assert rated.status_code == 200, rated.text

    detail = (await api.get(RESIDENT, f"/orders/{number}")).json()
    assert detail["state"] == "verified" and detail["result"] == "已更换灯泡"
    assert_timeline(detail, [("submit", "resident"), ("dispatch", "system"), ("accept", "dept_staff"),
                             ("progress", "dept_staff"), ("resolve", "dept_staff"), ("rate", "resident")], started)
    survey = await models.Outbox.get(order_id=order.id, kind="survey")
    assert survey.recipient == RESIDENT  # the 验单 survey went to the resident who wrote


async def test_an_unsure_report_waits_for_the_grid_worker_who_routes_it(api):
    started = datetime.now(timezone.utc)
    await says(api, "隔壁两口子天天吵架,吵得整栋楼睡不着")
    order = await newest_order_of(RESIDENT)
    number = order.number
    assert order.state == "submitted"

    queue = (await api.get(GRID_WORKER, "/dispatch-queue")).json()["items"]
    assert [item["number"] for item in queue] == [number]
    clerk = "demo-dept_staff-sifasuo"
    assert (await api.get(clerk, f"/orders/{number}")).status_code == 404  # not theirs until it is routed

    routed = await api.post(GRID_WORKER, f"/orders/{number}/dispatch", {"department": "sifasuo", "reason": "邻里纠纷"})
    assert routed.status_code == 200, routed.text
    assert (await api.post(clerk, f"/orders/{number}/accept")).status_code == 200
    assert (await api.post(clerk, f"/orders/{number}/progress", {"note": "约双方周六调解"})).status_code == 200
    assert (await api.post(clerk, f"/orders/{number}/resolve", {"result": "签订调解协议"})).status_code == 200
    assert (await api.post(RESIDENT, f"/orders/{number}/rate", {"score": 5})).status_code == 200

    detail = (await api.get(clerk, f"/orders/{number}")).json()
    assert_timeline(detail, [("submit", "resident"), ("dispatch", "grid_worker"), ("accept", "dept_staff"),
                             ("progress", "dept_staff"), ("resolve", "dept_staff"), ("rate", "resident")], started)
    assert detail["timeline"][1]["actor"]["name"] == "网格员王小燕"
    assert detail["routing"]["confidence"] == pytest.approx(0.41)
