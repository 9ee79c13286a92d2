"""Who may do what, over HTTP: WeChat login, refresh, invitation binding, JWTs that are expired, tampered or of
the wrong kind, and a table of every role × endpoint pair that must be refused."""
from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone

import jwt
import pytest

from api.auth import issue_tokens
from orders import models
from tests.e2e.api_harness import ADMIN, GRID_WORKER, JIANSHE, SUPERVISOR, serve_api

RESIDENT = "oResident0001"
ROLES = {"resident": RESIDENT, "grid_worker": GRID_WORKER, "dept_staff": JIANSHE, "supervisor": SUPERVISOR,
         "admin": ADMIN}
STAFF = {"grid_worker", "dept_staff", "supervisor", "admin"}
EVERYONE = STAFF | {"resident"}

# (method, path, body, roles admitted). {n} is an order of 村镇建设办 the resident above submitted.
ENDPOINTS = [
    ("GET", "/me", None, EVERYONE),
    ("POST", "/auth/link", {"code": "123456"}, {"resident"}),
    ("GET", "/orders", None, STAFF),
    ("GET", "/orders/{n}", None, EVERYONE),
    ("GET", "/dispatch-queue", None, {"grid_worker", "supervisor", "admin"}),
    ("GET", "/my/orders", None, {"resident"}),
    ("POST", "/orders/{n}/dispatch", {"department": "jianshe"}, {"grid_worker", "supervisor", "admin"}),
    ("POST", "/orders/{n}/accept", None, {"dept_staff"}),
    ("POST", "/orders/{n}/progress", {"note": "进展"}, {"dept_staff"}),
    ("POST", "/orders/{n}/extension", {"days": 2, "reason": "等配件"}, {"dept_staff"}),
    ("POST", "/orders/{n}/extension/approve", {}, {"supervisor", "admin"}),
    ("POST", "/orders/{n}/extension/deny", {"reason": "不同意"}, {"supervisor", "admin"}),
    ("POST", "/orders/{n}/return", {"reason": "不归我们管"}, {"dept_staff"}),
    ("POST", "/orders/{n}/invalidate", {"code": "spam", "reason": "这条消息没有具体诉求。"},
     {"grid_worker", "supervisor", "admin"}),
    ("POST", "/orders/{n}/merge", {"into": "YK20260101-0001"}, STAFF),
    ("POST", "/orders/{n}/resolve", {"result": "已修好"}, {"dept_staff"}),
    ("POST", "/orders/{n}/rate", {"score": 5}, {"resident"}),
    ("POST", "/orders/{n}/cancel", {}, {"resident"}),
    ("GET", "/departments", None, STAFF),
    ("GET", "/grids", None, STAFF),
    ("GET", "/taxonomy", None, STAFF),
    ("GET", "/admin/staff", None, {"admin"}),
    ("PATCH", "/admin/staff/{staff}", {"active": True}, {"admin"}),
    ("GET", "/admin/invitations", None, {"admin"}),
    ("POST", "/admin/invitations", {"name": "新人", "role": "supervisor"}, {"admin"}),
    ("PATCH", "/admin/departments/{code}", {"name": "改名"}, {"admin"}),
    ("POST", "/admin/grids", {"code": "G-9", "name": "新网格", "village": "楼坝村",
                              "centre": {"latitude": 28.6, "longitude": 104.4}}, {"admin"}),
    ("PATCH", "/admin/grids/{code}", {"name": "改名"}, {"admin"}),
    ("POST", "/auth/qr/{ticket}/confirm", None, STAFF),
    ("GET", "/auth/qr/{ticket}/info", None, STAFF),
    *[("GET", f"/stats/{name}", None, {"supervisor", "admin"})
      for name in ("summary", "breakdown", "trend", "overdue", "feed", "definitions", "dashboard", "hotspots",
                   "report/{file}")],
    ("POST", "/media", None, STAFF),
    ("GET", "/media/{media}", None, EVERYONE),  # who may read a medium is the order's business (test_media_flow)
]
PUBLIC = {("POST", "/auth/login"), ("POST", "/auth/refresh"), ("POST", "/auth/bind"), ("POST", "/auth/qr"),
          ("GET", "/auth/qr/{ticket}")}


@pytest.fixture
async def api(settings, store, fake_classifier):
    async with serve_api(settings, store, fake_classifier) as api:
        yield api


def _path(template: str, number: str, staff_id: int) -> str:
    return (template.replace("{n}", number).replace("{staff}", str(staff_id)).replace("{file}", "2026-03.csv")
            .replace("{media}", "1").replace("{ticket}", "A" * 22)
            .replace("/admin/departments/{code}", "/admin/departments/jianshe").replace("{code}", "XJB-01"))


async def _request(api, method: str, path: str, body, headers: dict):
    return await api.client.request(method, "/api/v1" + path, json=body, headers=headers)


async def _snapshot() -> tuple:
    """Everything a refused request must leave as it was."""
    return (await models.OrderEvent.all().count(), await models.Invitation.all().count(),
            await models.Staff.filter(active=True).count(), await models.IdempotencyRecord.all().count(),
            await models.ReferenceEdit.all().count(), await models.Grid.all().count())


async def test_every_role_is_refused_every_endpoint_it_may_not_use(api):
    number = await api.submit("村口的路灯坏了", openid=RESIDENT)
    staff_id = (await models.Staff.get(openid="demo-dept_staff-minzheng")).id
    before = await _snapshot()
    wrong = []
    for method, template, body, admitted in ENDPOINTS:
        for role in sorted(EVERYONE - admitted):
            response = await _request(api, method, _path(template, number, staff_id), body,
                                      await api.headers(ROLES[role], **{"Idempotency-Key": f"{role}{template}"}))
            if response.status_code != 403 or response.json()["error"]["code"] != "forbidden":
                wrong.append((role, method, template, response.status_code, response.text[:120]))
    assert wrong == []
    assert await _snapshot() == before


async def test_the_table_covers_every_operation_of_the_document(api):
    spec = (await api.client.get("/docs/openapi.json")).json()
    documented = {(method.upper(), path.removeprefix("/api/v1").replace("{number}", "{n}")
                   .replace("{staff_id}", "{staff}").replace("{filename}", "{file}").replace("{media_id}", "{media}"))
                  for path, operations in spec["paths"].items()
                  if path.startswith("/api/v1")
                  for method in operations}
    assert documented == {(m, p) for m, p, _, _ in ENDPOINTS} | PUBLIC


async def test_without_a_valid_access_token_every_protected_endpoint_says_401(api):
    number = await api.submit("村口的路灯坏了", openid=RESIDENT)
    staff = await models.Staff.get(openid=JIANSHE)
    settings = api.app.ctx.settings
    genuine = issue_tokens(settings, staff)
    long_ago = datetime.now(timezone.utc) - timedelta(days=30)
    expired = issue_tokens(settings, staff, now=long_ago)["access_token"]
    header, payload, signature = genuine["access_token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    promoted = base64.urlsafe_b64encode(json.dumps({**claims, "sub": "staff:1", "role": "admin"}).encode())
    tampered = f"{header}.{promoted.decode().rstrip('=')}.{signature}"
    none_header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').decode().rstrip("=")
    unsigned = f"{none_header}.{payload}."
    foreign = jwt.encode({**claims}, "some-other-secret-of-at-least-32-bytes!", algorithm="HS256")
    credentials = {
        "none": {},
        "not bearer": {"Authorization": f"Basic {genuine['access_token']}"},
        "expired": {"Authorization": f"Bearer {expired}"},
        "tampered": {"Authorization": f"Bearer {tampered}"},
        "unsigned": {"Authorization": f"Bearer {unsigned}"},
        "other secret": {"Authorization": f"Bearer {foreign}"},
        "refresh as access": {"Authorization": f"Bearer {genuine['refresh_token']}"},
        "garbage": {"Authorization": "Bearer not.a.jwt"},
    }
    before = await _snapshot()
    wrong = []
    for name, headers in credentials.items():
        for method, template, body, _ in ENDPOINTS:
            response = await _request(api, method, _path(template, number, staff.id), body, headers)
            if response.status_code != 401 or response.json()["error"]["code"] != "unauthorized":
                wrong.append((name, method, template, response.status_code))
    assert wrong == []
    assert await _snapshot() == before
    expired_answer = await _request(api, "GET", "/me", None, credentials["expired"])
    assert expired_answer.json()["error"]["message"] == "登录已过期,请重新登录"


async def test_a_deactivated_staff_members_tokens_stop_working_at_once(api):
    tokens = await api.login("demo-dept_staff-minzheng")
    staff = await models.Staff.get(openid="demo-dept_staff-minzheng")
    assert (await api.patch(ADMIN, f"/admin/staff/{staff.id}", {"active": False})).status_code == 200
    response = await api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert response.status_code == 401
    refresh = await api.client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refresh.status_code == 401
    me = (await api.login("demo-dept_staff-minzheng"))["profile"]  # their WeChat now logs in as a resident
    assert me["role"] == "resident"
    own = await models.Staff.get(openid=ADMIN)
    refused = await api.patch(ADMIN, f"/admin/staff/{own.id}", {"active": False})
    assert refused.status_code == 422  # an admin cannot lock themselves out
    assert (await api.patch(ADMIN, "/admin/staff/99999999999", {"active": False})).status_code == 404


async def test_login_tells_staff_from_residents_and_refuses_a_bad_code(api):
    staff = await api.login(JIANSHE)
    assert staff["role"] == "dept_staff"
    assert staff["profile"]["department"] == {"code": "jianshe", "name": "村镇建设办"}
    resident = await api.login("oBrandNew01")
    assert resident["role"] == "resident" and resident["profile"]["role_label"] == "群众"
    assert await models.Resident.filter(openid="oBrandNew01").count() == 1
    bad = await api.client.post("/api/v1/auth/login", json={"code": "not-a-code"})
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "wechat_login_failed"
    assert (await api.client.post("/api/v1/auth/login", json={})).status_code == 422
    assert any(r.path == "/sns/jscode2session" and r.query["js_code"] == "not-a-code" for r in api.wechat.received)


async def test_login_when_wechat_is_down_is_a_503_not_a_500(api):
    api.wechat.fail_next(1, status=502)
    response = await api.client.post("/api/v1/auth/login", json={"code": f"code-{RESIDENT}"})
    assert response.status_code == 503 and response.json()["error"]["code"] == "wechat_unavailable"


async def test_a_refresh_token_works_once(api):
    tokens = await api.login(SUPERVISOR)
    first = await api.client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert first.status_code == 200 and first.json()["role"] == "supervisor"
    me = await api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {first.json()['access_token']}"})
    assert me.json()["name"] == "督办员李主任"
    replayed = await api.client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert replayed.status_code == 401
    as_refresh = await api.client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["access_token"]})
    assert as_refresh.status_code == 401


async def test_without_a_mini_program_login_and_binding_say_so_and_call_nobody(settings, store, fake_classifier):
    async with serve_api(settings.with_overrides(wechat={"miniapp_appid": ""}), store, fake_classifier) as api:
        login = await api.client.post("/api/v1/auth/login", json={"code": f"code-{SUPERVISOR}"})
        bind = await api.client.post("/api/v1/auth/bind", json={"code": "wx-code", "invitation": "ABCD2345"})
        for response in (login, bind):
            assert response.status_code == 503, response.text
            error = response.json()["error"]
            assert error["code"] == "miniapp_not_configured" and "小程序" in error["message"]
        assert not any(r.path == "/sns/jscode2session" for r in api.wechat.received)


async def test_an_invitation_binds_a_new_staff_member_once(api):
    created = await api.post(ADMIN, "/admin/invitations",
                             {"name": "民政办张三", "role": "dept_staff", "department": "minzheng"})
    assert created.status_code == 201, created.text
    code = created.json()["code"]
    assert created.json()["staff"]["bound"] is False
    api.wechat.codes["wx-code-zhang"] = "oZhangSan"
    bound = await api.client.post("/api/v1/auth/bind",
                                  json={"code": "wx-code-zhang", "invitation": f"{code[:4]}-{code[4:].lower()}"})
    assert bound.status_code == 200, bound.text
    assert bound.json()["role"] == "dept_staff"
    assert bound.json()["profile"]["department"]["code"] == "minzheng"
    assert (await api.login("oZhangSan"))["role"] == "dept_staff"

    api.wechat.codes["wx-code-other"] = "oSomeoneElse"
    again = await api.client.post("/api/v1/auth/bind", json={"code": "wx-code-other", "invitation": code})
    assert again.status_code == 422 and again.json()["error"]["code"] == "invitation_invalid"
    assert (await models.Staff.get(name="民政办张三")).openid == "oZhangSan"
    listed = (await api.get(ADMIN, "/admin/invitations")).json()["items"]
    assert listed[0]["code"] == code and listed[0]["used_at"] is not None


async def test_an_expired_invitation_binds_nobody_and_a_bound_wechat_is_not_taken_over(api):
    staff = await models.Staff.get(openid="demo-dept_staff-minzheng")
    created = (await api.post(ADMIN, "/admin/invitations", {"staff_id": staff.id, "expires_hours": 1})).json()
    await models.Invitation.filter(code=created["code"]).update(
        expires_at=datetime.now(timezone.utc) - timedelta(minutes=1))
    expired = await api.client.post("/api/v1/auth/bind", json={"code": "code-oNewPhone", "invitation": created["code"]})
    assert expired.status_code == 422
    fresh = (await api.post(ADMIN, "/admin/invitations", {"staff_id": staff.id})).json()
    # The supervisor's WeChat is bound to the supervisor: it cannot become 民政办's account as well.
    taken = await api.client.post("/api/v1/auth/bind", json={"code": f"code-{SUPERVISOR}", "invitation": fresh["code"]})
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "conflict"
    assert "督办员李主任" not in taken.text  # an anonymous caller learns nobody's name
    assert (await models.Staff.get(id=staff.id)).openid == "demo-dept_staff-minzheng"
    assert (await models.Invitation.get(code=fresh["code"])).used_at is None  # nothing half-done
    moved = await api.client.post("/api/v1/auth/bind", json={"code": "code-oNewPhone", "invitation": fresh["code"]})
    assert moved.status_code == 200 and (await models.Staff.get(id=staff.id)).openid == "oNewPhone"


async def test_invitations_are_checked_before_anything_is_created(api):
    count = await models.Staff.all().count()
    cases = [
        {"name": "无角色"},
        {"name": "无部门", "role": "dept_staff"},
        {"name": "错部门", "role": "dept_staff", "department": "nowhere"},
        {"name": "无网格", "role": "grid_worker"},
        {"name": "怪角色", "role": "king"},
        {"staff_id": 99999},
    ]
    for body in cases:
        response = await api.post(ADMIN, "/admin/invitations", body)
        assert response.status_code in (404, 422), (body, response.text)
    assert await models.Staff.all().count() == count
    assert await models.Invitation.all().count() == 0


async def test_the_unionid_links_a_mini_program_login_to_the_official_account_resident(api):
    number = await api.submit("路灯不亮了", openid="oOfficialAccount01")
    await models.Resident.filter(openid="oOfficialAccount01").update(unionid="union-1")

    async def jscode2session(code: str) -> dict:
        return {"openid": "oMiniProgram01", "unionid": "union-1", "session_key": "k"}

    api.app.ctx.wechat.jscode2session = jscode2session
    tokens = (await api.client.post("/api/v1/auth/login", json={"code": "any"})).json()
    mine = await api.client.get("/api/v1/my/orders", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert [o["number"] for o in mine.json()["items"]] == [number]
    assert not await models.Resident.filter(openid="oMiniProgram01").exists()


async def test_nobody_is_put_into_a_deactivated_department_or_grid(api):
    """A department or grid the township file deactivated (kept for its orders) takes nobody new: neither a new
    member invited into it nor a retired member of it activated again. A clear 422, nothing written."""
    await models.Department.filter(code="renshe").update(active=False)
    await models.Grid.filter(code="XJB-02").update(active=False)
    clerk = await models.Staff.get(openid="demo-dept_staff-renshe")
    worker = await models.Staff.get(openid="demo-grid_worker-XJB-02")
    await models.Staff.filter(id__in=[clerk.id, worker.id]).update(active=False)
    staff_before = await models.Staff.all().order_by("id").values("id", "active", "department_id", "grid_id")

    for body, words in (({"name": "人社新人", "role": "dept_staff", "department": "renshe"}, "部门 renshe 人社所 已停用"),
                        ({"name": "新网格员", "role": "grid_worker", "grid": "XJB-02"}, "网格 XJB-02 ")):
        refused = await api.post(ADMIN, "/admin/invitations", body)
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["code"] == "invalid_input" and words in refused.json()["error"]["message"]
        assert "sidan township apply" in refused.json()["error"]["message"]
    for member, words in ((clerk, "部门 renshe 人社所 已停用,不能启用这名工作人员"), (worker, "网格 XJB-02 ")):
        refused = await api.patch(ADMIN, f"/admin/staff/{member.id}", {"active": True})
        assert refused.status_code == 422 and words in refused.json()["error"]["message"], refused.text
    assert await models.Staff.all().order_by("id").values("id", "active", "department_id", "grid_id") == staff_before
    assert await models.Invitation.all().count() == 0

    await models.Grid.filter(code="XJB-02").update(active=True)  # the grid back in the file: its worker may return
    assert (await api.patch(ADMIN, f"/admin/staff/{worker.id}", {"active": True})).status_code == 200
    assert (await api.patch(ADMIN, f"/admin/staff/{worker.id}", {"active": True})).status_code == 200  # already on
