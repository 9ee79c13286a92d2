"""An urgent report that reached nobody is shown to the first staff member who logs in (the login's profile, and
GET /api/v1/me), whatever their scope, until one of them opens it: the order's text only to those who may open it,
the others are asked to pass it on."""
from __future__ import annotations

import pytest

from orders import models
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

    # dispatched to 应急办 without a grid: not in the grid worker's scope either (orders/scope.py)
    [banner] = (await api.login("xa-grid-01"))["profile"]["urgent_unattended"]
    assert banner["can_open"] is False and banner["excerpt"] is None and "转告督办员" in banner["notice"]
    admin = (await api.login("xa-admin"))["profile"]
    [banner] = admin["urgent_unattended"]
    assert banner["can_open"] is True and "着火" in banner["excerpt"] and "立即打开处置" in banner["notice"]
    resident = (await api.login("o_resident_1"))["profile"]
    assert resident["urgent_unattended"] == []

    opened = await api.get("xa-admin", f"/orders/{number}")
    assert opened.status_code == 200
    attended = [entry for entry in opened.json()["timeline"] if entry["action"] == "attend_urgent"]
    assert [(entry["action_label"], entry["actor"]["name"]) for entry in attended] == [("急难事已接报", "周镇长")]
    me = await api.get("xa-jianshe", "/me")
    assert me.status_code == 200 and me.json()["urgent_unattended"] == []
    again = await api.get("xa-admin", f"/orders/{number}")  # opened again: nothing more recorded
    assert [entry["action"] for entry in again.json()["timeline"]].count("attend_urgent") == 1


async def test_a_supervisor_opening_a_flagged_order_attends_to_it_and_leaves_one_access_record(api):
    number = (await api.orders.submit(openid="o_resident_1", text=FIRE)).order.number  # nobody to tell
    await models.Staff.filter(name="吴主任").update(openid="xa-supervisor")  # bound after the report came in
    opened = await api.get("xa-supervisor", f"/orders/{number}")
    assert opened.status_code == 200
    assert [entry["actor"]["name"] for entry in opened.json()["timeline"] if entry["action"] == "attend_urgent"] \
        == ["吴主任"]
    # the detail is read again to show the attending event: the one view is recorded once
    views = await models.PersonalDataAccess.filter(order__number=number).values_list("staff__name", "what")
    assert views == [("吴主任", "view")]
