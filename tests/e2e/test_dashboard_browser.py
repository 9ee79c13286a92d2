"""The dashboard in headless Chromium on loopback, driven by Playwright (tests/e2e/browser.py): it draws the charts,
its headline numbers are the API's, the live feed picks up a new order, 热点诉求 lists a hot spot, and screenshots
are saved."""
from __future__ import annotations

import pytest

from tests.e2e.browser import browser_or_skip, chromium
from tests.e2e.dashboard_harness import serve_board

pytestmark = pytest.mark.browser
SCREEN = {"viewport": {"width": 1600, "height": 1000}, "device_scale_factor": 1, "locale": "zh-CN"}
FEED_POLL_MS = 5000  # dashboard.js polls the live feed this often; the page's clock jumps ahead instead of waiting


HEADLINE = """(() => Object.fromEntries(["response", "completion", "satisfaction", "resolution"].map(name => {
  const card = document.getElementById("rate-" + name);
  return [name, {display: card.querySelector(".value").textContent,
                 numerator: Number(card.dataset.numerator), denominator: Number(card.dataset.denominator)}];
})))()"""

CHARTS_DRAWN = """!!document.body && document.body.dataset.ready === "1" &&
  ["chart-trend", "chart-category", "chart-department"].every(id => {
    const chart = echarts.getInstanceByDom(document.getElementById(id));
    return chart && document.getElementById(id).querySelector("canvas") && chart.getOption().series.length > 0;
  })"""


HOTSPOT_ROWS = """Array.from(document.querySelectorAll('#hotspots-table tbody tr'))
  .map(tr => Array.from(tr.cells).map(td => td.textContent))"""


async def test_the_dashboard_draws_the_api_numbers(settings, store, fake_classifier, trained_router, tmp_path,
                                                   backend):
    from classifiers.similarity import TextSimilarity

    executable = browser_or_skip()
    async with (serve_board(settings, store, fake_classifier, TextSimilarity(trained_router)) as board,
                chromium(executable) as browser):
        token = await board.token("demo-supervisor", "dashboard")
        context = await browser.new_context(**SCREEN)
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.set_default_timeout(30_000)
        await page.clock.install()  # time flows as usual; fast_forward fires the feed's poll without the wait
        await page.goto(f"{board.base}/dashboard#token={token}")
        await page.wait_for_function(CHARTS_DRAWN, polling=200)
        # The token left the address bar; the headline is the API's summary for the same period.
        assert "token" not in await page.evaluate("location.href")
        shown = await page.evaluate(HEADLINE)
        api = (await board.get("/api/v1/stats/summary", token, period="30d")).json()["figures"]["rates"]
        for name, card in shown.items():
            assert card == {key: api[name][key] for key in ("display", "numerator", "denominator")}, name
        # By hand: March's 5 on time of 7 decided, and G (28 February, never accepted): 5 of 8.
        assert shown["response"] == {"display": "62.5%", "numerator": 5, "denominator": 8}
        assert await page.locator("#overdue-table tbody tr").count() == 4
        grid_rows = await page.locator("#grid-table tbody tr").count()
        assert grid_rows == len((await board.get("/api/v1/stats/breakdown", token, period="30d", by="grid"))
                                .json()["groups"])
        font = await page.evaluate("getComputedStyle(document.querySelector('h1')).fontFamily")
        assert "Noto Sans CJK SC" in font
        await page.screenshot(path=tmp_path / "dashboard.png", full_page=True)

        # The live feed: a new order appears within a poll or two, on top.
        await board.app.ctx.orders.submit(openid="resident-live", text="村口路灯又不亮了")
        await page.clock.fast_forward(FEED_POLL_MS)
        await page.wait_for_function("document.querySelector('#feed li').textContent.includes('村口路灯又不亮了')",
                                     polling=200, timeout=15_000)
        await page.screenshot(path=tmp_path / "dashboard-live.png", full_page=True)

        # 热点诉求: three residents of 楼坝村 report one broken lamp; the panel lists them once the feed sees them.
        listed = (await board.get("/api/v1/stats/hotspots", token)).json()["hotspots"]
        assert await page.evaluate("document.body.dataset.hotspots") == str(len(listed))
        louba = {"latitude": 28.641, "longitude": 104.406}
        numbers = [(await board.app.ctx.orders.submit(openid=f"resident-hot-{i}", text=text, location=louba))
                   .order.number
                   for i, text in enumerate(["三组路灯坏了,晚上一片黑", "三组的路灯不亮好几天了", "路灯坏了晚上看不见"])]
        await page.clock.fast_forward(FEED_POLL_MS)
        await page.wait_for_function(f"document.body.dataset.hotspots === '{len(listed) + 1}'", polling=200,
                                     timeout=15_000)
        [row] = [row for row in await page.evaluate(HOTSPOT_ROWS) if numbers[0] in row[5]]
        assert row[0] == "楼坝村" and row[1] == "3 件" and "路灯" in row[2]
        assert row[5].split() == numbers and row[7] == "—"  # listed; the sweep (not running here) tells
        await page.screenshot(path=tmp_path / "dashboard-hotspots.png", full_page=True)
        assert not errors, f"script errors on the page: {errors}"
        await context.close()
    shot = tmp_path / "dashboard.png"
    assert shot.stat().st_size > 50_000
    print(f"screenshot: {shot}")
