"""The mini-program API over HTTP on loopback, on SQLite and on PostgreSQL + Redis: the staff's work on an order,
scope, idempotency, validation, and what each reader is shown."""
from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from orders import models
from tests.e2e.api_harness import ADMIN, GRID_WORKER, JIANSHE, MINZHENG, SUPERVISOR, serve_api
from tests.support import photo_bytes

RESIDENT = "oResident0001"


@pytest.fixture
async def api(settings, store, fake_classifier):
    async with serve_api(settings, store, fake_classifier) as api:
        yield api


async def test_the_unsure_order_goes_through_the_grid_worker_to_the_resident_rating(api):
    number = await api.submit("隔壁两口子天天吵架,晚上也不消停", openid=RESIDENT,
                              location={"latitude": 28.641, "longitude": 104.406, "label": "楼坝村"})
    queue = (await api.get(GRID_WORKER, "/dispatch-queue")).json()["items"]
    assert [item["number"] for item in queue] == [number]

    dispatched = await api.post(GRID_WORKER, f"/orders/{number}/dispatch",
                                {"department": "paichusuo", "category": "平安建设", "reason": "涉及家暴"})
    assert dispatched.status_code == 200, dispatched.text
    assert dispatched.json()["department"] == {"code": "paichusuo", "name": "派出所"}
    assert (await api.get(GRID_WORKER, "/dispatch-queue")).json()["items"] == []

    clerk = "demo-dept_staff-paichusuo"
    assert [o["number"] for o in (await api.get(clerk, "/orders", params={"state": "dispatched"})).json()["items"]] \
        == [number]
    assert (await api.post(clerk, f"/orders/{number}/accept")).status_code == 200
    uploaded = await api.client.post("/api/v1/media", headers=await api.headers(clerk),
                                     files={"file": ("scene.jpg", photo_bytes(), "image/jpeg")})
    assert uploaded.status_code == 201, uploaded.text
    assert (await api.post(clerk, f"/orders/{number}/progress",
                           {"note": "已上门了解情况", "photos": [uploaded.json()["id"]],
                            "notify_resident": True})).status_code == 200
    assert (await api.post(clerk, f"/orders/{number}/extension", {"days": 3, "reason": "一方外出"})).status_code == 200
    approved = await api.post(SUPERVISOR, f"/orders/{number}/extension/approve", {"reason": "同意"})
    assert approved.status_code == 200 and approved.json()["extension_days_requested"] is None
    resolved = await api.post(clerk, f"/orders/{number}/resolve", {"result": "已出警并登记,移交妇联跟进"})
    assert resolved.json()["state"] == "resolved"

    rated = await api.post(RESIDENT, f"/orders/{number}/rate", {"score": 5, "comment": "处理及时"})
    assert rated.status_code == 200, rated.text
    detail = rated.json()
    assert detail["state"] == "verified"
    assert [(r["score"], r["resolved"], r["comment"]) for r in detail["ratings"]] == [(5, True, "处理及时")]
    steps = [(e["action"], e["actor"]["role"], e["actor"]["name"]) for e in detail["timeline"]]
    assert steps == [
        ("submit", "resident", "居民0001"),
        ("dispatch", "grid_worker", "网格员王小燕"),
        ("accept", "dept_staff", "派出所值班员"),
        ("progress", "dept_staff", "派出所值班员"),
        ("request_extension", "dept_staff", "派出所值班员"),
        ("extend", "supervisor", "督办员李主任"),
        ("resolve", "dept_staff", "派出所值班员"),
        ("rate", "resident", "居民0001"),
    ]
    assert all(datetime.fromisoformat(e["at"]) for e in detail["timeline"])
    photo_id = uploaded.json()["id"]
    assert detail["progress_photos"] == [str(photo_id)]
    assert [(p["id"], p["source"], p["status"]) for p in detail["photos"]] == [(photo_id, "progress", "stored")]
    assert (await api.client.get(detail["photos"][0]["url"])).content == photo_bytes()  # the resident sees it too
    assert detail["routing"] is None and detail["resident"] is None  # a resident is not shown staff's view
    correction = await models.Correction.get(order__number=number)
    assert (correction.department, correction.category, correction.source) == ("paichusuo", "平安建设", "redispatch")


async def test_a_department_returns_a_misrouted_order_to_the_dispatchers(api):
    number = await api.submit("村口的路灯坏了,其实是电线被人偷了")
    returned = await api.post(JIANSHE, f"/orders/{number}/return",
                              {"reason": "属于盗窃,应由派出所处理", "suggested_department": "paichusuo",
                               "suggested_category": "平安建设"})
    assert returned.status_code == 200, returned.text
    assert returned.json()["state"] == "returned"
    assert (await api.get(JIANSHE, f"/orders/{number}")).status_code == 404  # no longer theirs
    assert [o["number"] for o in (await api.get(SUPERVISOR, "/dispatch-queue")).json()["items"]] == [number]


async def test_a_resident_sees_and_cancels_only_their_own_orders(api):
    mine = await api.submit("路灯不亮了", openid=RESIDENT)
    theirs = await api.submit("路灯又坏了", openid="oNeighbour02")
    listed = (await api.get(RESIDENT, "/my/orders")).json()["items"]
    assert [o["number"] for o in listed] == [mine]
    assert (await api.get(RESIDENT, f"/orders/{theirs}")).status_code == 404
    assert (await api.post(RESIDENT, f"/orders/{theirs}/cancel", {})).status_code == 404
    cancelled = await api.post(RESIDENT, f"/orders/{mine}/cancel", {"reason": "已经修好了"})
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    again = await api.post(RESIDENT, f"/orders/{mine}/cancel", {})
    assert again.status_code == 409 and again.json()["error"]["code"] == "illegal_transition"


async def test_staff_of_one_department_cannot_find_another_departments_order(api):
    number = await api.submit("村口的路灯坏了")  # → jianshe
    response = await api.get(MINZHENG, f"/orders/{number}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert (await api.post(MINZHENG, f"/orders/{number}/accept")).status_code == 404
    assert (await api.get(MINZHENG, "/orders")).json()["items"] == []
    unknown = await api.get(MINZHENG, "/orders/YK20990101-9999")  # what a number that does not exist looks like
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
    assert await api.events(number) == ["submit", "dispatch"]


async def test_a_grid_worker_sees_their_grid_and_the_unlocated_queue_but_not_other_grids(api):
    here = await api.submit("两口子吵架", location={"latitude": 28.641, "longitude": 104.406})  # XJB-01
    there = await api.submit("邻居吵架", location={"latitude": 28.625, "longitude": 104.425})  # XJB-04
    nowhere = await api.submit("有人吵架")
    queue = [o["number"] for o in (await api.get(GRID_WORKER, "/dispatch-queue")).json()["items"]]
    assert queue == [here, nowhere]  # oldest first
    assert (await api.get(GRID_WORKER, f"/orders/{there}")).status_code == 404
    assert (await api.post(GRID_WORKER, f"/orders/{there}/dispatch", {"department": "sifasuo"})).status_code == 404
    supervisor_queue = [o["number"] for o in (await api.get(SUPERVISOR, "/dispatch-queue")).json()["items"]]
    assert supervisor_queue == [here, there, nowhere]
    # an order without a grid is theirs while it waits for dispatch, not once a department has it
    elsewhere = await api.submit("低保怎么申请")  # dispatched at once to 民政办, no grid
    assert (await api.get(GRID_WORKER, f"/orders/{elsewhere}")).status_code == 404
    listed = [o["number"] for o in (await api.get(GRID_WORKER, "/orders")).json()["items"]]
    assert listed == [nowhere, here]
    assert (await api.post(GRID_WORKER, f"/orders/{nowhere}/dispatch", {"department": "sifasuo"})).status_code == 200
    assert (await api.get(GRID_WORKER, f"/orders/{nowhere}")).status_code == 404  # dispatched: off their desk


async def test_two_staff_accepting_at_once_one_wins_and_one_gets_409(api):
    jianshe = await models.Department.get(code="jianshe")
    await models.Staff.create(openid="second-jianshe", name="村镇建设办副主任", role="dept_staff", department=jianshe)
    number = await api.submit("村口的路灯坏了")
    first, second = await api.headers(JIANSHE), await api.headers("second-jianshe")
    url = f"/api/v1/orders/{number}/accept"
    responses = await asyncio.gather(api.client.post(url, headers=first), api.client.post(url, headers=second))
    assert sorted(r.status_code for r in responses) == [200, 409]
    loser = next(r for r in responses if r.status_code == 409)
    assert loser.json()["error"]["code"] in ("conflict", "illegal_transition")
    assert await api.events(number) == ["submit", "dispatch", "accept"]
    winner = next(r for r in responses if r.status_code == 200).json()
    order = await models.Order.get(number=number).select_related("accepted_by")
    assert order.accepted_by.name == winner["accepted_by"]["name"]


async def test_a_repeated_idempotency_key_returns_the_first_result_and_changes_nothing(api):
    number = await api.submit("村口的路灯坏了")
    await api.post(JIANSHE, f"/orders/{number}/accept")
    note = {"note": "已派电工", "photos": []}
    first = await api.post(JIANSHE, f"/orders/{number}/progress", note, **{"Idempotency-Key": "note-1"})
    repeat = await api.post(JIANSHE, f"/orders/{number}/progress", note, **{"Idempotency-Key": "note-1"})
    assert first.status_code == repeat.status_code == 200
    assert repeat.json() == first.json() and repeat.headers["Idempotent-Replayed"] == "true"
    assert await api.events(number) == ["submit", "dispatch", "accept", "progress"]

    other_body = await api.post(JIANSHE, f"/orders/{number}/progress", {"note": "另一条"},
                                **{"Idempotency-Key": "note-1"})
    assert other_body.status_code == 422 and other_body.json()["error"]["code"] == "idempotency_key_reused"
    # The key belongs to its caller: someone else's identical key is another request.
    invitation = await api.post(ADMIN, "/admin/invitations", {"name": "新网格员", "role": "grid_worker", "grid": "XJB-02"},
                                **{"Idempotency-Key": "note-1"})
    assert invitation.status_code == 201, invitation.text
    assert await api.events(number) == ["submit", "dispatch", "accept", "progress"]


async def test_a_failed_first_attempt_does_not_burn_the_idempotency_key(api):
    number = await api.submit("村口的路灯坏了")
    await api.post(JIANSHE, f"/orders/{number}/accept")
    empty = await api.post(JIANSHE, f"/orders/{number}/resolve", {"result": " "}, **{"Idempotency-Key": "r-1"})
    assert empty.status_code == 422
    fixed = await api.post(JIANSHE, f"/orders/{number}/resolve", {"result": "已修复"}, **{"Idempotency-Key": "r-1"})
    assert fixed.status_code == 200, fixed.text
    assert await models.IdempotencyRecord.all().count() == 1


async def test_bad_input_gets_a_chinese_422_and_changes_nothing(api):
    number = await api.submit("村口的路灯坏了")
    await api.post(JIANSHE, f"/orders/{number}/accept")
    cases = [
        ({"note": ""}, "note 不能为空"),
        ({}, "note 必须填写"),
        ({"note": "好", "photos": ["a"] * 10}, "photos 最多 9 项"),
        ({"note": "好", "surprise": 1}, "surprise 是不认识的字段"),
        ({"note": "含\x00字符"}, "note 包含无效字符"),
    ]
    for body, message in cases:
        response = await api.post(JIANSHE, f"/orders/{number}/progress", body)
        assert response.status_code == 422, body
        assert response.json()["error"]["code"] == "invalid_input"
        assert message in response.json()["error"]["message"], response.json()
    broken = await api.client.post(f"/api/v1/orders/{number}/progress", content=b"{not json",
                                   headers=await api.headers(JIANSHE))
    assert broken.status_code == 422 and "JSON" in broken.json()["error"]["message"]
    score = await api.post(RESIDENT, f"/orders/{number}/rate", {"score": 6})
    assert score.status_code == 422 and "score 不能大于 5" in score.json()["error"]["message"]
    assert await api.events(number) == ["submit", "dispatch", "accept"]


async def test_order_list_filters_and_pages_without_gaps(api):
    numbers = [await api.submit(f"第{i}盏路灯坏了") for i in range(5)]
    await api.submit("村里低保怎么申请")  # → minzheng
    await api.post(JIANSHE, f"/orders/{numbers[0]}/accept")
    seen, cursor = [], None
    while True:
        params = {"limit": 2, "department": "jianshe", **({"cursor": cursor} if cursor else {})}
        page = (await api.get(SUPERVISOR, "/orders", params=params)).json()
        seen += [item["number"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(numbers))  # newest first, each exactly once
    accepted = (await api.get(SUPERVISOR, "/orders", params={"state": "accepted"})).json()["items"]
    assert [o["number"] for o in accepted] == [numbers[0]]
    found = (await api.get(SUPERVISOR, "/orders", params={"q": "第3盏"})).json()["items"]
    assert [o["number"] for o in found] == [numbers[3]]
    assert (await api.get(SUPERVISOR, "/orders", params={"state": "flying"})).status_code == 422
    assert (await api.get(SUPERVISOR, "/orders", params={"cursor": "garbage"})).status_code == 422
    assert (await api.get(SUPERVISOR, "/orders", params={"limit": 0})).status_code == 422


async def test_the_detail_offers_the_actions_the_reader_may_take(api):
    number = await api.submit("村口的路灯坏了")
    assert (await api.get(JIANSHE, f"/orders/{number}")).json()["actions"] == ["accept", "return", "merge"]
    assert (await api.get(RESIDENT, f"/orders/{number}")).json()["actions"] == ["cancel"]


async def test_the_same_idempotency_key_sent_twice_at_once_runs_once(api):
    number = await api.submit("村口的路灯坏了")
    await api.post(JIANSHE, f"/orders/{number}/accept")
    headers = await api.headers(JIANSHE, **{"Idempotency-Key": "double-tap"})
    url = f"/api/v1/orders/{number}/progress"
    responses = await asyncio.gather(*(api.client.post(url, json={"note": "已派电工"}, headers=headers)
                                       for _ in range(3)))
    assert {r.status_code for r in responses} <= {200, 409}
    assert 200 in {r.status_code for r in responses}
    for response in responses:
        if response.status_code == 409:
            assert "正在处理" in response.json()["error"]["message"]
    assert await api.events(number) == ["submit", "dispatch", "accept", "progress"]
