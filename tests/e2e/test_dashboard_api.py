"""/api/v1/stats and the monthly report on loopback: who may read, the hand-counted figures, Excel and CSV."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone

from openpyxl import load_workbook

from tests.e2e.dashboard_harness import serve_board

SUPERVISOR, ADMIN, JIANSHE = "demo-supervisor", "demo-admin", "demo-dept_staff-jianshe"


async def test_only_supervisors_and_admins_read_the_statistics(settings, store, fake_classifier):
    async with serve_board(settings, store, fake_classifier) as board:
        assert (await board.get("/api/v1/stats/summary", None)).status_code == 401
        refused = await board.get("/api/v1/stats/summary", await board.token(JIANSHE))
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
        assert "督办员" in refused.json()["error"]["message"]
        refresh = await board.get("/api/v1/stats/summary", await board.token(SUPERVISOR, "refresh"))
        assert refresh.status_code == 401
        garbage = await board.get("/api/v1/stats/summary", "not.a.token")
        assert garbage.status_code == 401 and garbage.json()["error"]["message"]
        for token in (await board.token(SUPERVISOR), await board.token(ADMIN),
                      await board.token(SUPERVISOR, "dashboard")):
            assert (await board.get("/api/v1/stats/summary", token)).status_code == 200
        expired = await board.token(SUPERVISOR, "dashboard", hours=1,
                                    signed_at=datetime.now(timezone.utc) - timedelta(hours=2))
        response = await board.get("/api/v1/stats/dashboard", expired)
        assert response.status_code == 401 and "过期" in response.json()["error"]["message"]
        # The page itself carries no data: it loads without a token.
        page = await board.client.get("/dashboard")
        assert page.status_code == 200 and "一屏总览" in page.text
        vendor = await board.client.get("/dashboard/static/vendor/echarts.min.js")
        assert vendor.status_code == 200 and len(vendor.content) > 500_000


async def test_the_api_gives_the_hand_counted_figures(settings, store, fake_classifier):
    async with serve_board(settings, store, fake_classifier) as board:
        token = await board.token(SUPERVISOR)
        body = (await board.get("/api/v1/stats/summary", token, period="2026-03")).json()
        rates = body["figures"]["rates"]
        assert rates["response"] == {"numerator": 5, "denominator": 7, "value": 0.714286, "display": "71.4%"}
        assert (rates["satisfaction"]["numerator"], rates["satisfaction"]["denominator"]) == (2, 5)
        assert body["period"] == {"label": "2026 年 3 月", "start": "2026-03-01", "end": "2026-03-31", "days": 31}
        weijian = (await board.get("/api/v1/stats/summary", token, period="2026-03", department="weijian")).json()
        assert weijian["figures"]["rates"]["satisfaction"]["display"] == "—"
        assert weijian["figures"]["rates"]["satisfaction"]["value"] is None
        groups = (await board.get("/api/v1/stats/breakdown", token, period="2026-03", by="grid")).json()["groups"]
        assert sum(group["counts"]["received"] for group in groups) == 8
        trend = (await board.get("/api/v1/stats/trend", token, period="2026-03", by="week")).json()
        assert [bucket["key"] for bucket in trend["buckets"]][:2] == ["2026-02-23", "2026-03-02"]
        overdue = (await board.get("/api/v1/stats/overdue", token)).json()["orders"]
        assert [row["number"] for row in overdue] == [board.numbers[k] for k in "GEDB"]
        feed = (await board.get("/api/v1/stats/feed", token, after=0, limit=2)).json()
        assert [row["number"] for row in feed["orders"]] == [board.numbers["I"], board.numbers["H"]]
        dashboard = (await board.get("/api/v1/stats/dashboard", token, period="30d")).json()
        assert dashboard["period"]["start"] == "2026-02-19" and dashboard["trend"]["by"] == "day"
        assert dashboard["summary"]["counts"]["received"] == 9  # March's eight and G (28 February)
        assert dashboard["definitions"]["rates"]["response"]["name"] == "响应率"
        definitions = dashboard["definitions"]
        assert "不进入任何比率的分子和分母" in definitions["count_definitions"]["invalid"]
        assert definitions["counts"]["closed_unresolved"] == "办结(未解决)"
        assert all("不含不予受理" in rate["denominator"] for rate in definitions["rates"].values())


async def test_bad_parameters_get_a_clear_422(settings, store, fake_classifier):
    async with serve_board(settings, store, fake_classifier) as board:
        token = await board.token(SUPERVISOR)
        for path, params, words in [
            ("/api/v1/stats/summary", {"period": "last week"}, "时间段格式不对"),
            ("/api/v1/stats/summary", {"department": "nosuch"}, "没有这个部门"),
            ("/api/v1/stats/summary", {"grid": "XJB-99"}, "没有这个网格"),
            ("/api/v1/stats/summary", {"category": "其他"}, "没有这个分类"),
            ("/api/v1/stats/summary", {"urgency": "急事"}, "没有这个紧急程度"),
            ("/api/v1/stats/breakdown", {"by": "colour"}, "不能按"),
            ("/api/v1/stats/trend", {"by": "month"}, "趋势只能按"),
            ("/api/v1/stats/overdue", {"limit": "lots"}, "应为整数"),
            ("/api/v1/stats/feed", {"limit": "0"}, "之间"),
            ("/api/v1/stats/report/2026-3.csv", {}, "月份格式"),
            ("/api/v1/stats/report/2026-03.csv", {"sheet": "x"}, "sheet"),
        ]:
            response = await board.get(path, token, **params)
            assert response.status_code == 422, (path, params, response.text)
            assert words in response.json()["error"]["message"], (path, response.json())


async def test_the_monthly_report_as_excel_and_csv(settings, store, fake_classifier):
    async with serve_board(settings, store, fake_classifier) as board:
        # A resident's text that a spreadsheet would run as a formula.
        board.app.ctx.orders.clock.set(datetime(2026, 3, 19, 2, 0, tzinfo=timezone.utc))
        await board.app.ctx.orders.submit(openid="resident-X", text="=HYPERLINK(\"http://evil\")路灯")
        token = await board.token(SUPERVISOR)
        response = await board.get("/api/v1/stats/report/2026-03.xlsx", token)
        assert response.status_code == 200
        assert "attachment" in response.headers["content-disposition"]
        book = load_workbook(io.BytesIO(response.content))
        assert book.sheetnames == ["汇总", "分组", "工单"]
        summary = {row[0]: row[1:4] for row in book["汇总"].iter_rows(values_only=True) if row and row[0]}
        # The app's clock (and so the statistics' "now") is at the new order's submission: it was dispatched
        # this instant and still has its hour to be accepted, so it is not in the 响应率 yet.
        assert summary["响应率"] == ("71.4%", 5, 7)
        assert summary["待接单(未超时)"] == (1, None, None)
        assert summary["满意率"] == ("40.0%", 2, 5)
        assert summary["不予受理"] == (0, None, None) and summary["办结(未解决)"] == (0, None, None)
        orders = list(book["工单"].iter_rows(values_only=True))
        assert len(orders) == 1 + 9 and orders[0][0] == "工单号"
        texts = [row[-1] for row in orders[1:]]
        assert "'=HYPERLINK(\"http://evil\")路灯" in texts
        submitted = orders[1][1]
        assert isinstance(submitted, datetime) and submitted.tzinfo is None  # local time, as people read it

        summary_csv = await board.get("/api/v1/stats/report/2026-03.csv", token)
        assert summary_csv.content.startswith("\ufeff".encode())
        rows = list(csv.reader(io.StringIO(summary_csv.content.decode("utf-8-sig"))))
        header, whole = rows[0], rows[1]
        assert whole[:3] == ["全镇", "合计", "9"]
        assert whole[header.index("满意率")] == "40.0%" and whole[header.index("满意率分母")] == "5"
        orders_csv = await board.get("/api/v1/stats/report/2026-03.csv", token, sheet="orders")
        order_rows = list(csv.reader(io.StringIO(orders_csv.content.decode("utf-8-sig"))))
        assert len(order_rows) == 10 and "'=HYPERLINK" in order_rows[-1][-1]
