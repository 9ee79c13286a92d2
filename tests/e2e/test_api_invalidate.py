"""The API's names and the dispatchers' view over HTTP, on both backends: 不予受理 by each role (and refused to the
others, on accepted orders, with bad input), `return` (never `return_`) in timelines, actions and errors, the
dispatch queue's 退单 reason and suggestion, extension answers offered only when asked, the pending-extension
filter."""
from __future__ import annotations

import pytest

from orders import models
from tests.e2e.api_harness import ADMIN, GRID_WORKER, JIANSHE, SUPERVISOR, serve_api

RESIDENT = "oResident0001"
ADVICE = "电费问题请拨打国网供电服务热线 95598 反映,他们会派人核实。"


@pytest.fixture
async def api(settings, store, fake_classifier):
    async with serve_api(settings, store, fake_classifier) as api:
        yield api


@pytest.mark.parametrize("who", [GRID_WORKER, SUPERVISOR, ADMIN])
async def test_each_dispatcher_closes_an_order_as_invalid_and_the_resident_reads_why(api, who):
    # auto → jianshe, not yet accepted; in the grid worker's grid (XJB-01)
    number = await api.submit("路灯电费太贵了", openid=RESIDENT, location={"latitude": 28.641, "longitude": 104.406})
    before = (await api.get(who, f"/orders/{number}")).json()
    assert "invalidate" in before["actions"]
    closed = await api.post(who, f"/orders/{number}/invalidate", {"code": "out_of_remit", "reason": ADVICE})
    assert closed.status_code == 200, closed.text
    detail = closed.json()
    assert (detail["state"], detail["state_label"], detail["actions"]) == ("invalid", "不予受理", [])
    last = detail["timeline"][-1]
    assert (last["action"], last["action_label"], last["reason"]) == ("invalidate", "不予受理", ADVICE)
    assert last["data"] == {"code": "out_of_remit", "code_label": "不属于本镇受理范围"}
    mine = (await api.get(RESIDENT, f"/orders/{number}")).json()
    assert mine["state_label"] == "不予受理" and mine["timeline"][-1]["reason"] == ADVICE
    assert await models.Outbox.filter(order__number=number, kind="invalidated", recipient=RESIDENT).count() == 1
    listed = (await api.get(SUPERVISOR, "/orders", params={"state": "invalid"})).json()["items"]
    assert [item["number"] for item in listed] == [number]


async def test_invalidate_is_refused_to_others_on_accepted_orders_and_on_bad_input(api):
    number = await api.submit("路灯不亮了", openid=RESIDENT)
    body = {"code": "spam", "reason": "这条消息没有具体诉求。"}
    department = await api.post(JIANSHE, f"/orders/{number}/invalidate", body)
    assert department.status_code == 403 and department.json()["error"]["code"] == "forbidden"
    assert (await api.post(RESIDENT, f"/orders/{number}/invalidate", body)).status_code == 403
    for bad, message in [({"code": "nonsense", "reason": ADVICE}, "code 只能是 'out_of_remit'"),
                         ({"reason": ADVICE}, "code 必须填写"),
                         ({"code": "spam", "reason": ""}, "reason 不能为空"),
                         ({"code": "spam", "reason": "无效"}, "告知群众的说明太短了")]:
        response = await api.post(GRID_WORKER, f"/orders/{number}/invalidate", bad)
        assert response.status_code == 422, bad
        assert response.json()["error"]["code"] == "invalid_input" and message in response.json()["error"]["message"]
    await api.post(JIANSHE, f"/orders/{number}/accept")
    accepted = await api.post(SUPERVISOR, f"/orders/{number}/invalidate", body)
    assert accepted.status_code == 409 and accepted.json()["error"]["code"] == "illegal_transition"
    assert accepted.json()["error"]["message"] == "工单当前状态为“办理中”(accepted),不能执行“不予受理”(invalidate)"
    assert await api.events(number) == ["submit", "dispatch", "accept"]
    assert await models.Outbox.filter(order__number=number, kind="invalidated").count() == 0


async def test_return_is_return_in_actions_timelines_and_errors_and_the_queue_shows_why(api):
    number = await api.submit("村口的路灯坏了,其实是电线被人偷了")
    assert (await api.get(JIANSHE, f"/orders/{number}")).json()["actions"] == ["accept", "return", "merge"]
    returned = await api.post(JIANSHE, f"/orders/{number}/return",
                              {"reason": "属于盗窃,应由派出所处理,报案人电话13812345678",
                               "suggested_department": "paichusuo", "suggested_category": "平安建设"})
    assert returned.status_code == 200, returned.text
    timeline = returned.json()["timeline"]
    assert [entry["action"] for entry in timeline] == ["submit", "dispatch", "return"]
    assert timeline[-1]["action_label"] == "退单"
    [queued] = (await api.get(GRID_WORKER, "/dispatch-queue")).json()["items"]
    assert queued["number"] == number
    note = queued["returned"]
    assert note["reason"] == "属于盗窃,应由派出所处理,报案人电话138****5678"  # staff read phones masked
    assert note["suggested_department"] == {"code": "paichusuo", "name": "派出所"}
    assert note["suggested_category"] == "平安建设" and note["returned_by"] and note["returned_at"]
    fresh = await api.submit("隔壁两口子天天吵架")  # unsure: in the queue, never returned
    queue = (await api.get(SUPERVISOR, "/dispatch-queue")).json()["items"]
    assert [(item["number"], item["returned"] is None) for item in queue] == [(number, False), (fresh, True)]
    offered = set((await api.get(GRID_WORKER, f"/orders/{fresh}")).json()["actions"])
    assert offered == {"dispatch", "invalidate", "merge"}
    again = await api.post(JIANSHE, f"/orders/{number}/return", {"reason": "再退一次"})  # no longer theirs
    assert again.status_code == 404
    await api.post(SUPERVISOR, f"/orders/{number}/dispatch", {"department": "jianshe"})
    await api.post(JIANSHE, f"/orders/{number}/accept")
    await api.post(JIANSHE, f"/orders/{number}/resolve", {"result": "已修复"})
    late = await api.post(JIANSHE, f"/orders/{number}/return", {"reason": "办结后又想退"})
    assert late.status_code == 409 and late.json()["error"]["details"]["action"] == "return"
    assert "(return)" in late.json()["error"]["message"] and "return_" not in late.text


async def test_extension_answers_are_offered_only_when_asked_and_the_list_filters_them(api):
    asked, quiet = await api.submit("东头的路灯坏了"), await api.submit("西头的路灯坏了")
    for number in (asked, quiet):
        await api.post(JIANSHE, f"/orders/{number}/accept")
    actions = (await api.get(SUPERVISOR, f"/orders/{asked}")).json()["actions"]
    assert "extend" not in actions and "deny_extension" not in actions and "escalate" in actions
    await api.post(JIANSHE, f"/orders/{asked}/extension", {"days": 3, "reason": "等配件"})
    actions = (await api.get(SUPERVISOR, f"/orders/{asked}")).json()["actions"]
    assert "extend" in actions and "deny_extension" in actions
    assert "extend" not in (await api.get(SUPERVISOR, f"/orders/{quiet}")).json()["actions"]
    pending = (await api.get(SUPERVISOR, "/orders", params={"extension_pending": "true"})).json()["items"]
    assert [(item["number"], item["extension_days_requested"]) for item in pending] == [(asked, 3)]
    others = (await api.get(SUPERVISOR, "/orders", params={"extension_pending": "false"})).json()["items"]
    assert [item["number"] for item in others] == [quiet]
    assert (await api.get(SUPERVISOR, "/orders", params={"extension_pending": "maybe"})).status_code == 422
    denied = await api.post(SUPERVISOR, f"/orders/{asked}/extension/deny", {"reason": "配件本周能到"})
    assert "extend" not in denied.json()["actions"]
    assert (await api.get(SUPERVISOR, "/orders", params={"extension_pending": "true"})).json()["items"] == []
