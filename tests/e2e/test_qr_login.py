"""PC login by QR code: the PC asks for a ticket, a staff member's phone confirms it, the PC's poll gets that
member's tokens once; tickets expire with the store's TTL (Redis or in-process)."""
from __future__ import annotations

import asyncio
from urllib.parse import unquote

import pytest

from api.v1 import qr_routes
from orders import models
from tests.e2e.api_harness import API, JIANSHE, SUPERVISOR, serve_api

RESIDENT = "oResident0001"


@pytest.fixture
async def api(settings, store, fake_classifier):
    async with serve_api(settings, store, fake_classifier) as api:
        yield api


async def new_ticket(api) -> dict:
    response = await api.client.post(f"{API}/auth/qr")
    assert response.status_code == 201, response.text
    return response.json()


async def poll(api, ticket: str, secret: str):
    return await api.client.get(f"{API}/auth/qr/{ticket}", params={"poll_secret": secret})


async def test_the_phone_confirms_and_the_pc_gets_that_members_tokens_once(api):
    created = await new_ticket(api)
    ticket, secret = created["ticket"], created["poll_secret"]
    public_url = api.app.ctx.settings.app.public_url
    assert created["confirm_url"].startswith(f"{public_url}/m/auth?next=")
    assert unquote(created["confirm_url"].split("next=", 1)[1]) == f"/m/#/qr/{ticket}"
    assert (await poll(api, ticket, secret)).json() == {"status": "pending", "tokens": None}
    info = await api.get(JIANSHE, f"/auth/qr/{ticket}/info")  # what the phone's confirm page shows first
    assert info.status_code == 200 and info.json()["address"] == "127.0.0.1"
    assert info.json()["device"].startswith("python-httpx") and info.json()["requested_at"]
    assert (await api.get(RESIDENT, f"/auth/qr/{ticket}/info")).status_code == 403

    confirmed = await api.post(JIANSHE, f"/auth/qr/{ticket}/confirm")
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "granted" and "建设" in confirmed.json()["message"]

    granted = (await poll(api, ticket, secret)).json()
    assert granted["status"] == "granted" and granted["tokens"]["role"] == "dept_staff"
    me = await api.client.get(f"{API}/me", headers={"Authorization": f"Bearer {granted['tokens']['access_token']}"})
    staff = await models.Staff.get(openid=JIANSHE)
    assert me.json()["name"] == staff.name
    assert (await poll(api, ticket, secret)).json() == {"status": "granted", "tokens": None}  # handed out once
    again = await api.post(SUPERVISOR, f"/auth/qr/{ticket}/confirm")
    assert again.status_code in (404, 409)  # nobody else can take over a ticket once granted


async def test_simultaneous_polls_get_the_tokens_once(api):
    created = await new_ticket(api)
    assert (await api.post(SUPERVISOR, f"/auth/qr/{created['ticket']}/confirm")).status_code == 200
    answers = await asyncio.gather(*[poll(api, created["ticket"], created["poll_secret"]) for _ in range(5)])
    assert [a.status_code for a in answers] == [200] * 5
    assert sum(a.json()["tokens"] is not None for a in answers) == 1


async def test_polling_needs_the_secret_and_confirming_needs_an_active_staff_login(api):
    created = await new_ticket(api)
    ticket = created["ticket"]
    wrong = await poll(api, ticket, "guessed")
    assert wrong.status_code == 401 and "二维码" in wrong.json()["error"]["message"]
    missing = await api.client.get(f"{API}/auth/qr/{ticket}")
    assert missing.status_code == 422 and "poll_secret" in missing.json()["error"]["message"]
    anonymous = await api.client.post(f"{API}/auth/qr/{ticket}/confirm")
    assert anonymous.status_code == 401
    resident = await api.post(RESIDENT, f"/auth/qr/{ticket}/confirm")
    assert resident.status_code == 403
    headers = await api.headers(SUPERVISOR)
    await models.Staff.filter(openid=SUPERVISOR).update(active=False)
    retired = await api.client.post(f"{API}/auth/qr/{ticket}/confirm", headers=headers)
    assert retired.status_code == 401
    assert (await poll(api, ticket, created["poll_secret"])).json()["status"] == "pending"  # nothing granted


async def test_a_member_deactivated_after_confirming_gets_no_tokens(api):
    created = await new_ticket(api)
    assert (await api.post(JIANSHE, f"/auth/qr/{created['ticket']}/confirm")).status_code == 200
    await models.Staff.filter(openid=JIANSHE).update(active=False)
    answer = (await poll(api, created["ticket"], created["poll_secret"])).json()
    assert answer == {"status": "expired", "tokens": None}


async def test_tickets_expire_and_unknown_ones_are_expired(api, monkeypatch):
    monkeypatch.setattr(qr_routes, "QR_SECONDS", 1)
    monkeypatch.setattr(qr_routes, "GRANT_GRACE_SECONDS", 0)
    created = await new_ticket(api)
    await asyncio.sleep(1.3)
    assert (await poll(api, created["ticket"], created["poll_secret"])).json()["status"] == "expired"
    assert (await api.get(JIANSHE, f"/auth/qr/{created['ticket']}/info")).status_code == 404
    late = await api.post(JIANSHE, f"/auth/qr/{created['ticket']}/confirm")
    assert late.status_code == 404 and "过期" in late.json()["error"]["message"]
    unknown = await poll(api, "A" * 22, "whatever")
    assert unknown.json() == {"status": "expired", "tokens": None}
    malformed = await api.post(JIANSHE, "/auth/qr/not*a*ticket/confirm")
    assert malformed.status_code == 404


async def test_creating_tickets_is_rate_limited(api, monkeypatch):
    monkeypatch.setattr(qr_routes, "CREATE_PER_MINUTE", 3)
    answers = [(await api.client.post(f"{API}/auth/qr")).status_code for _ in range(5)]
    assert answers == [201, 201, 201, 429, 429]
