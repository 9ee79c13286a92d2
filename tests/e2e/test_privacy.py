"""Personal data on loopback, on both backends: who reads an order unmasked through the API, the record it leaves,
the staff notifications, and the statistics, the dashboard and its exports (masked for everyone)."""
from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from typing import Any

import pytest
from openpyxl import load_workbook

from orders import models
from tests.e2e.api_harness import ADMIN, GRID_WORKER, JIANSHE, SUPERVISOR, serve_api
from tests.e2e.dashboard_harness import serve_board
from tests.integration.stats_history import NOW

RESIDENT = "oResident0001"
# As residents write them, and the digits that must never come out to someone who does not handle the order.
PERSONAL = [
    ("13912345678", "13912345678"),
    ("+86 139-1234-5678", "13912345678"),
    ("139-2234-5678", "13922345678"),
    ("139 3234 5678", "13932345678"),
    ("0871-1234567", "08711234567"),
    ("010 1234 5678", "01012345678"),
    ("110101199003071234", "110101199003071234"),
    ("6222 0212 3456 7890 123", "6222021234567890123"),
]


def strings(value: Any) -> list[str]:
    """Every string inside a JSON answer, a payload or a row."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in strings(item)]
    if isinstance(value, list | tuple):
        return [s for item in value for s in strings(item)]
    return []


def leaked(value: Any) -> list[str]:
    """The personal numbers that can be read in `value`, however they were written."""
    found = []
    for text in strings(value):
        digits = re.sub(r"\D", "", text)
        found += [written for written, number in PERSONAL if number in digits]
    return found


ALL_OF_THEM = "路灯坏了,请联系我:" + ",".join(written for written, _ in PERSONAL)
IN_THE_GRID_WORKERS_GRID = {"latitude": 28.641, "longitude": 104.406}  # XJB-01: the demo grid worker sees it


@pytest.fixture
async def api(settings, store, fake_classifier):
    async with serve_api(settings, store, fake_classifier) as api:
        yield api


@pytest.mark.parametrize(("written", "digits"), PERSONAL, ids=[written for written, _ in PERSONAL])
async def test_each_way_of_writing_a_number_is_masked_for_staff_who_do_not_handle_the_order(api, written, digits):
    text = f"路灯坏了,联系{written}"
    number = await api.submit(text, openid=RESIDENT, location=IN_THE_GRID_WORKERS_GRID)
    for openid in (GRID_WORKER, ADMIN):
        seen = (await api.get(openid, f"/orders/{number}")).json()
        assert seen["number"] == number and leaked(seen) == [], openid
    assert leaked((await api.get(SUPERVISOR, "/orders")).json()["items"]) == []
    notices = await models.Outbox.filter(order__number=number, kind__startswith="notify_").values("payload")
    assert notices and leaked([n["payload"] for n in notices]) == []
    assert (await api.get(JIANSHE, f"/orders/{number}")).json()["text"] == text


async def test_the_handling_department_and_supervisors_read_it_unmasked_and_leave_a_record(api):
    number = await api.submit(ALL_OF_THEM, openid=RESIDENT, location=IN_THE_GRID_WORKERS_GRID)
    assert (await api.post(JIANSHE, f"/orders/{number}/accept")).status_code == 200
    note = await api.post(JIANSHE, f"/orders/{number}/progress", {"note": "已打 139-1234-5678 联系上群众"})
    assert note.status_code == 200 and note.json()["timeline"][-1]["data"]["note"] == "已打 139-1234-5678 联系上群众"
    order = await models.Order.get(number=number)
    records_before = await models.PersonalDataAccess.filter(order_id=order.id).count()
    assert records_before == 2  # the answers to accept and progress were the order, unmasked

    for openid in (RESIDENT, JIANSHE, SUPERVISOR):
        seen = (await api.get(openid, f"/orders/{number}")).json()
        assert seen["text"] == ALL_OF_THEM, openid
    for openid in (GRID_WORKER, ADMIN):  # they route orders and manage accounts: masked
        seen = await api.get(openid, f"/orders/{number}")
        assert seen.status_code == 200 and leaked(seen.json()) == [], (openid, leaked(seen.json()))
        assert "139****5678" in seen.json()["text"] and "139****5678" in seen.json()["timeline"][-1]["data"]["note"]
    # A list is not opening the order: the excerpt is masked even for the supervisor.
    listed = (await api.get(SUPERVISOR, "/orders")).json()["items"]
    assert listed[0]["number"] == number and leaked(listed) == []

    records = await models.PersonalDataAccess.filter(order_id=order.id).order_by("id").values(
        "staff__openid", "what", "at")
    assert [(r["staff__openid"], r["what"]) for r in records[records_before:]] == [(JIANSHE, "view"),
                                                                                   (SUPERVISOR, "view")]
    assert all(r["at"] is not None for r in records)

    # Notices to staff travel through WeChat: masked in the outbox (the department opens the order to call).
    notices = await models.Outbox.filter(order_id=order.id, kind__startswith="notify_").values("payload")
    assert notices and leaked([n["payload"] for n in notices]) == []


async def board_with_numbers(board) -> list[str]:
    """One order per way of writing, in March and past the hour to accept by NOW: in the feed and overdue."""
    clock = board.app.ctx.orders.clock
    clock.set(NOW - timedelta(days=2))
    numbers = [(await board.app.ctx.orders.submit(openid=f"resident-P{i}", text=f"{written} 路灯坏了")).order.number
               for i, (written, _) in enumerate(PERSONAL)]
    clock.set(NOW)
    return numbers


async def _feed(board, token):
    return (await board.get("/api/v1/stats/feed", token)).json()["orders"]


async def _overdue(board, token):
    return (await board.get("/api/v1/stats/overdue", token)).json()["orders"]


async def _dashboard(board, token):
    body = (await board.get("/api/v1/stats/dashboard", token)).json()
    assert leaked(body) == []
    return body["feed"] + body["overdue"]


async def _orders_csv(board, token):
    response = await board.get("/api/v1/stats/report/2026-03.csv", token, sheet="orders")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    return [{"number": row[0], "row": row} for row in rows[1:]]


async def _workbook(board, token):
    response = await board.get("/api/v1/stats/report/2026-03.xlsx", token)
    rows = list(load_workbook(io.BytesIO(response.content))["工单"].iter_rows(values_only=True))
    return [{"number": row[0], "row": list(row)} for row in rows[1:]]


@pytest.mark.parametrize("read", [_feed, _overdue, _dashboard, _orders_csv, _workbook],
                         ids=["feed", "overdue", "dashboard", "orders.csv", "report.xlsx"])
async def test_statistics_and_exports_carry_no_personal_data(settings, store, fake_classifier, read):
    async with serve_board(settings, store, fake_classifier) as board:
        numbers = await board_with_numbers(board)
        rows = await read(board, await board.token("demo-supervisor"))
        ours = [row for row in rows if row["number"] in numbers]
        assert {row["number"] for row in ours} == set(numbers)
        assert leaked(ours) == []
        assert any("139****5678 路灯坏了" in strings(row) for row in ours)  # still there, masked


async def test_a_dashboard_link_cannot_take_the_orders_and_a_supervisor_login_can_masked(settings, store,
                                                                                          fake_classifier):
    async with serve_board(settings, store, fake_classifier) as board:
        numbers = await board_with_numbers(board)
        supervisor, link = await board.token("demo-supervisor"), await board.token("demo-supervisor", "dashboard")
        # A link on a wall screen, valid for weeks: the figures and the summary, never the list of orders.
        for params, path in (({}, "2026-03.xlsx"), ({"sheet": "orders"}, "2026-03.csv")):
            refused = await board.get(f"/api/v1/stats/report/{path}", link, **params)
            assert refused.status_code == 403, (path, refused.status_code)
            error = refused.json()["error"]
            assert error["code"] == "forbidden" and "工单明细" in error["message"]
        assert (await board.get("/api/v1/stats/report/2026-03.csv", link)).status_code == 200
        assert (await board.get("/api/v1/stats/dashboard", link)).json()["can_export_orders"] is False
        assert await models.PersonalDataAccess.all().count() == 0

        # The supervisor's own login may, masked (the test above), and each export is recorded.
        assert (await board.get("/api/v1/stats/dashboard", supervisor)).json()["can_export_orders"] is True
        assert [row["number"] for row in await _workbook(board, supervisor) if row["number"] in numbers] == numbers
        assert len(await _orders_csv(board, supervisor)) > len(numbers)
        exports = await models.PersonalDataAccess.all().order_by("id").values("staff__openid", "what", "detail",
                                                                              "order_id")
        assert exports == [{"staff__openid": "demo-supervisor", "what": "export", "detail": "2026-03.xlsx",
                            "order_id": None},
                           {"staff__openid": "demo-supervisor", "what": "export", "detail": "2026-03.csv",
                            "order_id": None}]
