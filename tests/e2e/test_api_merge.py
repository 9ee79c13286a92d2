"""合并工单 end to end, on both backends: over HTTP (who may merge, the view's similar/merged_into/followers, refusals
in Chinese writing nothing), and two residents reporting one matter through the fake WeChat — the second report
lists the first as similar, the grid worker merges it, both hear the department's acceptance, both are surveyed on
their own numbers, the second's "not solved" reopens the first, and both rate the redone work."""
from __future__ import annotations

import asyncio

import pytest

from bot.chat import Simulator
from orders import models
from orders.stats import Stats
from tests.e2e.api_harness import GRID_WORKER, JIANSHE, SUPERVISOR, serve_api

ALICE, BOB = "o_alice_resident_0000000001", "o_bob_resident_00000000002"
LAMP_ALICE = "村口的路灯坏了,晚上黑漆漆的"
LAMP_BOB = "村口路灯不亮了,晚上黑漆漆的"
HERE = (28.641, 104.406)  # XJB-01, demo-grid_worker's grid
NEXT_DOOR = (28.6412, 104.4062)


@pytest.fixture
async def api(settings, store, fake_classifier):
    async with serve_api(settings, store, fake_classifier) as api:
        yield api


async def test_merge_over_http_shows_on_both_orders_and_refusals_say_why(api):
    here = {"latitude": HERE[0], "longitude": HERE[1]}
    first = await api.submit(LAMP_ALICE, openid=ALICE, location=here)
    second = await api.submit(LAMP_BOB, openid=BOB, location=here)
    before = (await api.get(GRID_WORKER, f"/orders/{second}")).json()
    assert "merge" in before["actions"] and before["merged_into"] is None and before["followers"] == []
    for body, status, message in [({}, 422, "into 必须填写"),
                                  ({"into": second}, 422, "不能把工单合并到它自己"),
                                  ({"into": "YK20990101-0001"}, 422, "没有找到要合并到的工单"),
                                  ({"into": first, "reason": "灯" * 501}, 422, "reason")]:
        refused = await api.post(GRID_WORKER, f"/orders/{second}/merge", body)
        assert refused.status_code == status, body
        assert message in refused.json()["error"]["message"], refused.text
    assert (await api.post(BOB, f"/orders/{second}/merge", {"into": first})).status_code == 403
    assert await api.events(second) == ["submit", "dispatch"]

    merged = await api.post(GRID_WORKER, f"/orders/{second}/merge", {"into": first, "reason": "同一盏路灯"})
    assert merged.status_code == 200, merged.text
    view = merged.json()
    assert (view["state"], view["state_label"], view["merged_into"], view["actions"]) == (
        "merged", "已合并,随主工单办理", first, [])
    assert (view["timeline"][-1]["action"], view["timeline"][-1]["action_label"]) == ("merge", "合并工单")
    primary = (await api.get(JIANSHE, f"/orders/{first}")).json()
    assert primary["followers"] == [second] and primary["timeline"][-1]["action"] == "merged_in"
    again = await api.post(SUPERVISOR, f"/orders/{second}/merge", {"into": first})
    assert again.status_code == 409 and again.json()["error"]["code"] == "illegal_transition"
    mine = (await api.get(BOB, f"/orders/{second}")).json()
    assert mine["merged_into"] == first and mine["similar"] == []


async def eventually(predicate, seconds: float = 15.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("not reached in time")


def custom_texts(api, openid: str) -> list[str]:
    return [m.body["text"]["content"] for m in api.wechat.messages_to(openid) if m.path.endswith("/custom/send")]


async def test_two_residents_one_matter_both_surveyed(settings, store, trained_router):
    settings = settings.with_overrides(outbox={"poll_seconds": 0.02, "backoff_base_seconds": 0.02,
                                               "backoff_max_seconds": 0.1})
    async with serve_api(settings, store, trained_router, background=True) as api:
        token = api.app.ctx.settings.wechat.token
        alice, bob = Simulator(api.base, token, ALICE), Simulator(api.base, token, BOB)
        await alice.send_async(alice.location_message(*HERE, "村口"), api.client)
        await alice.send_async(alice.text_message(LAMP_ALICE), api.client)
        first = await models.Order.get(resident__openid=ALICE)
        await bob.send_async(bob.location_message(*NEXT_DOOR, "村口"), api.client)
        await bob.send_async(bob.text_message(LAMP_BOB), api.client)
        second = await models.Order.get(resident__openid=BOB)
        jianshe = (await models.Department.get(code="jianshe")).id
        if first.department_id != jianshe:  # wherever the router sent it, the grid worker routes it to 村镇建设办
            await api.post(GRID_WORKER, f"/orders/{first.number}/dispatch", {"department": "jianshe"})

        async def listed() -> bool:
            view = (await api.get(GRID_WORKER, f"/orders/{second.number}")).json()
            return [entry["number"] for entry in view["similar"]] == [first.number]
        await eventually(listed)  # found in the background, after the intake's commit

        merged = await api.post(GRID_WORKER, f"/orders/{second.number}/merge", {"into": first.number})
        assert merged.status_code == 200, merged.text
        await eventually(lambda: _has(api, BOB, f"已与工单 {first.number} 合并办理"))
        status = await bob.send_async(bob.text_message(second.number), api.client)
        assert f"与工单 {first.number} 反映的是同一件事,随该工单一并办理" in status and "村镇建设办" in status
        mine = await bob.send_async(bob.text_message("我的工单"), api.client)
        assert f"{second.number}" in mine and f"【已合并,随工单 {first.number} 办理】" in mine
        assert (await api.post(JIANSHE, f"/orders/{first.number}/accept")).status_code == 200
        await eventually(lambda: _has(api, BOB, f"工单 {second.number})(与工单 {first.number} 合并办理)已由"))
        assert (await api.post(JIANSHE, f"/orders/{first.number}/resolve", {"result": "已更换灯泡"})).status_code == 200
        await eventually(lambda: _has(api, ALICE, f"工单 {first.number})已办结"))
        await eventually(lambda: _has(api, BOB, f"工单 {second.number})(与工单 {first.number} 合并办理)已办结"))

        answer = await bob.send_async(bob.text_message("2 还是不亮"), api.client)
        assert second.number in answer and "重新办理" in answer
        assert (await models.Order.get(id=first.id)).state == "reopened"
        assert (await models.Order.get(id=second.id)).state == "merged"

        assert (await api.post(JIANSHE, f"/orders/{first.number}/accept")).status_code == 200
        assert (await api.post(JIANSHE, f"/orders/{first.number}/resolve", {"result": "换了线路"})).status_code == 200
        await eventually(lambda: _has(api, BOB, "换了线路"))
        await eventually(lambda: _has(api, ALICE, "换了线路"))
        assert first.number in await alice.send_async(alice.text_message("5 很满意"), api.client)
        assert second.number in await bob.send_async(bob.text_message("5"), api.client)

        ratings = await models.Rating.all().order_by("id").values_list("order_id", "round", "score")
        assert ratings == [(second.id, 0, 2), (first.id, 1, 5), (second.id, 1, 5)]
        stats = Stats(clock=api.app.ctx.clock)
        today = await stats.summary(stats.period("today"))
        assert (today.counts["received"], today.counts["matters"], today.counts["merged"]) == (2, 1, 1)
        assert today.rates["completion"].denominator == 1 and today.rates["satisfaction"].denominator == 3

        status = await bob.send_async(bob.text_message(second.number), api.client)
        assert "已评价" in status


async def _has(api, openid: str, words: str) -> bool:
    return any(words in text for text in custom_texts(api, openid))
