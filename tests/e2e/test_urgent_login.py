"""An urgent report that reached nobody is shown to the first staff member who logs in (the login's profile, and
GET /api/v1/me), whatever their scope, until one of them opens it: the order's text only to those who may open it,
the others are asked to pass it on."""
from __future__ import annotations

import pytest

from orders.clock import FrozenClock
from orders.township import load_township_file
from orders.township.apply import apply_township
from tests.e2e.api_harness import serve_api
from tests.integration.test_urgent_reports import FIRE, TUESDAY_EVENING
from tests.support import REPO


@pytest.fixture
async def api(settings, store, fake_classifier):
    async with serve_api(settings, store, fake_classifier, clock=FrozenClock(TUESDAY_EVENING), demo=False) as api:
        await apply_township(load_township_file(REPO / "tests/data/xinan-township.toml"), now=TUESDAY_EVENING)
        yield api


async def test_the_first_staff_member_to_log_in_sees_the_urgent_report_nobody_was_told_of(api):
    submission = await api.orders.submit(openid="o_resident_1", text=FIRE)  # nobody on duty, no supervisor bound
    number = submission.order.number
    assert submission.urgent_notified == 0

    clerk = (await api.login("xa-jianshe"))["profile"]  # 规划建设办: the fire went to 应急办, not theirs to open
    [banner] = clerk["urgent_unattended"]
    assert banner["number"] == number and banner["urgency"] == "急难事" and banner["can_open"] is False
    assert banner["excerpt"] is None and "0831-7650110" in banner["notice"] and "转告督办员" in banner["notice"]
    assert (await api.get("xa-jianshe", f"/orders/{number}")).status_code == 404

    grid_worker = (await api.login("xa-grid-01"))["profile"]  # an order without a location: the grid workers'
    [banner] = grid_worker["urgent_unattended"]
    assert banner["can_open"] is True and "着火" in banner["excerpt"] and "立即打开处置" in banner["notice"]
    resident = (await api.login("o_resident_1"))["profile"]
    assert resident["urgent_unattended"] == []

    opened = await api.get("xa-grid-01", f"/orders/{number}")
    assert opened.status_code == 200
    attended = [entry for entry in opened.json()["timeline"] if entry["action"] == "attend_urgent"]
    assert [(entry["action_label"], entry["actor"]["name"]) for entry in attended] == [("急难事已接报", "郑网格")]
    me = await api.get("xa-jianshe", "/me")
    assert me.status_code == 200 and me.json()["urgent_unattended"] == []
    again = await api.get("xa-grid-01", f"/orders/{number}")  # opened again: nothing more recorded
    assert [entry["action"] for entry in again.json()["timeline"]].count("attend_urgent") == 1
