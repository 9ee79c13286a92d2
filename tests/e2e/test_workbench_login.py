"""The workbench's login inside WeChat (the official account's web authorisation under /m/auth, through the fake
WeChat's authorize page and /sns/oauth2/access_token) and binding by invitation with the openid_ticket it hands out."""
from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from api.auth import signed_token
from api.web_auth import NONCE_COOKIE, OPENID_TICKET_TYP, STATE_TYP, openid_ticket, sign_state
from orders import models
from tests.e2e.api_harness import ADMIN, serve_api

WEB_USER = "oWebStaff0001"
NONCE = "this-browsers-nonce"
THIS_BROWSER = {"Cookie": f"{NONCE_COOKIE}={NONCE}"}


@pytest.fixture
async def api(settings, store, fake_classifier):
    async with serve_api(settings, store, fake_classifier) as api:
        yield api


async def web_login(api, openid: str, next_path: str = "/m/") -> dict[str, str]:
    """The browser's walk: /m/auth → WeChat's authorize page → /m/auth/callback → /m/#/signed-in?…"""
    api.wechat.web_openid = openid
    start = await api.client.get("/m/auth", params={"next": next_path})
    assert start.status_code == 302, start.text
    authorize = start.headers["location"]
    assert authorize.endswith("#wechat_redirect")
    async with httpx.AsyncClient() as browser:
        back = await browser.get(authorize.split("#", 1)[0])
    assert back.status_code == 302
    callback = urlsplit(back.headers["location"])
    assert callback.path == "/m/auth/callback"
    signed_in = await api.client.get(f"{callback.path}?{callback.query}")
    assert signed_in.status_code == 302, signed_in.text
    assert signed_in.headers["cache-control"] == "no-store"
    location = signed_in.headers["location"]
    path, _, fragment = location.partition("#")
    assert path == "/m/" and fragment.startswith("/signed-in?")
    replayed = await api.client.get(f"{callback.path}?{callback.query}")  # the nonce was spent
    assert replayed.status_code == 400 and "登录链接已用过" in replayed.text
    return {key: values[0] for key, values in parse_qs(fragment.partition("?")[2]).items()}


async def me(api, access_token: str) -> dict:
    response = await api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {access_token}"})
    assert response.status_code == 200, response.text
    return response.json()


async def test_the_authorize_redirect_names_the_account_the_callback_and_a_signed_state(api):
    response = await api.client.get("/m/auth", params={"next": "/m/#/orders/YK20261124-0001"})
    assert response.status_code == 302
    url = urlsplit(response.headers["location"])
    assert f"{url.scheme}://{url.netloc}" == api.wechat.base_url and url.path == "/connect/oauth2/authorize"
    query = {key: values[0] for key, values in parse_qs(url.query).items()}
    settings = api.app.ctx.settings
    assert query["appid"] == settings.wechat.appid and query["scope"] == "snsapi_base"
    assert query["response_type"] == "code" and url.fragment == "wechat_redirect"
    assert query["redirect_uri"] == f"{settings.app.public_url}/m/auth/callback"
    assert "/m/#/orders" not in query["state"]  # signed, not the bare path
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{NONCE_COOKIE}=") and "Path=/m/auth" in cookie and "HttpOnly" in cookie
    no_next = await api.client.get("/m/auth")
    assert no_next.status_code == 302


async def test_a_resident_signs_in_and_gets_a_ticket_to_bind_a_staff_member_signs_in_as_staff(api):
    fragment = await web_login(api, WEB_USER, next_path="/m/#/orders")
    assert fragment["next"] == "/m/#/orders" and "openid_ticket" in fragment
    assert (await me(api, fragment["access_token"]))["role"] == "resident"
    # the official account's openid is the resident's bot openid: the same person as in the chat
    assert await models.Resident.filter(openid=WEB_USER).count() == 1
    exchange = [r for r in api.wechat.received if r.path == "/sns/oauth2/access_token"]
    assert exchange[-1].query["code"] == f"web-{WEB_USER}" and exchange[-1].query["grant_type"] == "authorization_code"
    assert exchange[-1].query["appid"] == api.app.ctx.settings.wechat.appid

    invitation = (await api.post(ADMIN, "/admin/invitations",
                                 {"name": "建设办王五", "role": "dept_staff", "department": "jianshe"})).json()
    bound = await api.client.post("/api/v1/auth/bind", json={"invitation": invitation["code"],
                                                             "openid_ticket": fragment["openid_ticket"]})
    assert bound.status_code == 200, bound.text
    assert bound.json()["role"] == "dept_staff" and bound.json()["profile"]["name"] == "建设办王五"
    staff = await models.Staff.get(name="建设办王五")
    assert staff.oa_openid == WEB_USER and staff.openid is None  # the official account's, not the mini-program's

    again = await web_login(api, WEB_USER)
    assert "openid_ticket" not in again and again["next"] == "/m/"
    profile = await me(api, again["access_token"])
    assert profile["role"] == "dept_staff" and profile["department"]["code"] == "jianshe"

    await models.Staff.filter(id=staff.id).update(active=False)  # a deactivated member is a resident again
    retired = await web_login(api, WEB_USER)
    assert (await me(api, retired["access_token"]))["role"] == "resident" and "openid_ticket" in retired


async def test_a_resident_signed_in_on_the_web_sees_the_orders_they_sent_the_bot(api):
    """The official account's openid names the bot's resident: the web door must not make a mini-program row."""
    order = (await api.app.ctx.orders.submit(openid="oBotResident01", text="村口的路灯坏了")).order
    fragment = await web_login(api, "oBotResident01")
    mine = await api.client.get("/api/v1/my/orders", headers={"Authorization": f"Bearer {fragment['access_token']}"})
    assert mine.status_code == 200, mine.text
    assert [item["number"] for item in mine.json()["items"]] == [order.number]
    assert await models.Resident.filter(openid="oBotResident01").count() == 1
    assert await models.Resident.filter(miniapp_openid="oBotResident01").count() == 0


@pytest.mark.parametrize("next_path", ["https://evil.example/m/", "//evil.example/m/", "/m/../api/v1/me", "/mx/",
                                       "/admin", "/m/\\evil", "javascript:alert(1)", "/m//evil.example"])
async def test_next_can_only_name_a_page_of_the_workbench(api, next_path):
    response = await api.client.get("/m/auth", params={"next": next_path})
    assert response.status_code == 400 and "location" not in response.headers
    assert "工作台" in response.text and response.headers["content-type"].startswith("text/html")
    assert not [r for r in api.wechat.received if r.path == "/connect/oauth2/authorize"]


async def test_a_forged_altered_or_expired_state_is_refused_with_a_chinese_page(api):
    settings = api.app.ctx.settings
    genuine = sign_state(settings, "/m/", NONCE)
    long_ago = datetime.now(timezone.utc) - timedelta(minutes=11)
    digest = hashlib.sha256(NONCE.encode()).hexdigest()
    expired = signed_token(settings, STATE_TYP, "web-auth", timedelta(minutes=10), now=long_ago, next="/m/",
                           nonce=digest)
    forged = signed_token(settings.with_overrides(auth={"jwt_secret": "x" * 48}), STATE_TYP, "web-auth",
                          timedelta(minutes=10), next="/m/", nonce=digest)
    not_a_state = openid_ticket(settings, WEB_USER)  # signed by us, but another kind of token
    for state in (genuine[:-4] + "AAAA", expired, forged, not_a_state, ""):
        response = await api.client.get("/m/auth/callback", params={"code": f"web-{WEB_USER}", "state": state},
                                        headers=THIS_BROWSER)
        assert response.status_code == 400, state
        assert "登录链接已过期或无效" in response.text and "location" not in response.headers
    # a genuine state opened in another browser (a callback link sent to someone): nobody is signed in
    for cookie in ({}, {"Cookie": f"{NONCE_COOKIE}=another-browser"}):
        response = await api.client.get("/m/auth/callback", params={"code": f"web-{WEB_USER}", "state": genuine},
                                        headers=cookie)
        assert response.status_code == 400 and "不是在这台手机上打开的" in response.text
    assert not [r for r in api.wechat.received if r.path == "/sns/oauth2/access_token"]  # nothing was exchanged
    assert not await models.Resident.filter(openid=WEB_USER).exists()


async def test_wechat_refusing_the_code_or_being_down_says_what_to_do(api):
    state = sign_state(api.app.ctx.settings, "/m/", NONCE)
    no_code = await api.client.get("/m/auth/callback", params={"state": state}, headers=THIS_BROWSER)
    assert no_code.status_code == 400 and "微信没有返回授权结果" in no_code.text
    refused = await api.client.get("/m/auth/callback", params={"code": "forged", "state": state}, headers=THIS_BROWSER)
    assert refused.status_code == 401 and "微信授权失败" in refused.text
    api.wechat.fail_next(1, status=502)
    down = await api.client.get("/m/auth/callback", params={"code": f"web-{WEB_USER}", "state": state},
                                headers={"Accept": "application/json", **THIS_BROWSER})
    assert down.status_code == 503
    assert down.json()["error"]["code"] == "wechat_unavailable" and "稍后" in down.json()["error"]["message"]
    assert not await models.Resident.filter(openid=WEB_USER).exists()


async def test_binding_with_a_bad_ticket_or_two_identities_writes_nothing(api):
    settings = api.app.ctx.settings
    invitation = (await api.post(ADMIN, "/admin/invitations", {"name": "新网格员", "role": "supervisor"})).json()
    long_ago = datetime.now(timezone.utc) - timedelta(minutes=11)
    expired = signed_token(settings, OPENID_TICKET_TYP, f"oa:{WEB_USER}", timedelta(minutes=10), now=long_ago)
    access = (await api.login("oSomeResident"))["access_token"]  # signed by us, but a login, not a ticket
    for ticket in (expired, access, "not-a-ticket"):
        response = await api.client.post("/api/v1/auth/bind", json={"invitation": invitation["code"],
                                                                    "openid_ticket": ticket})
        assert response.status_code == 401 and "重新打开工作台" in response.json()["error"]["message"]
    both = await api.client.post("/api/v1/auth/bind", json={"invitation": invitation["code"], "code": "code-x",
                                                            "openid_ticket": openid_ticket(settings, WEB_USER)})
    neither = await api.client.post("/api/v1/auth/bind", json={"invitation": invitation["code"]})
    for response in (both, neither):
        assert response.status_code == 422 and "openid_ticket" in response.json()["error"]["message"]
    assert (await models.Invitation.get(code=invitation["code"])).used_at is None
    assert not await models.Staff.filter(oa_openid=WEB_USER).exists()


async def test_an_official_account_openid_bound_to_an_active_member_is_not_taken_over(api):
    first = (await api.post(ADMIN, "/admin/invitations", {"name": "甲", "role": "supervisor"})).json()
    second = (await api.post(ADMIN, "/admin/invitations", {"name": "乙", "role": "supervisor"})).json()
    ticket = openid_ticket(api.app.ctx.settings, WEB_USER)
    ok = await api.client.post("/api/v1/auth/bind", json={"invitation": first["code"], "openid_ticket": ticket})
    assert ok.status_code == 200
    taken = await api.client.post("/api/v1/auth/bind", json={"invitation": second["code"], "openid_ticket": ticket})
    assert taken.status_code == 409 and "甲" not in taken.text
    assert (await models.Invitation.get(code=second["code"])).used_at is None


async def test_the_link_of_a_staff_notice_opens_the_order_in_the_workbench(api):
    opened = await api.client.get("/m/orders/YK20261124-0001", follow_redirects=False)
    assert opened.status_code == 302 and opened.headers["location"] == "/m/#/orders/YK20261124-0001"
    odd = await api.client.get("/m/orders/%3Cscript%3E", follow_redirects=False)
    assert odd.status_code == 302 and odd.headers["location"] == "/m/"
