"""The dashboard in headless Chromium on loopback, driven over the DevTools protocol: it draws the charts,
its headline numbers are the API's, the live feed picks up a new order, and a screenshot is saved."""
from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from tests.e2e.dashboard_harness import serve_board
from tests.support import IN_CI

pytestmark = pytest.mark.browser

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
         "--remote-debugging-port=0", "--window-size=1600,1000", "--lang=zh-CN"]


def chromium_or_skip() -> str:
    path = os.environ.get("SIDAN_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if path:
        return path
    message = "headless Chromium not found (apt-get install chromium fonts-noto-cjk, or set SIDAN_CHROMIUM)"
    if IN_CI:
        pytest.fail(f"CI=true: {message}", pytrace=False)
    pytest.skip(message)


def cjk_font_or_skip() -> None:
    """The page must render in Chinese fonts: without one the screenshot would show boxes."""
    fc_list = shutil.which("fc-list")
    found = fc_list and subprocess.run([fc_list, ":lang=zh", "family"], capture_output=True, text=True).stdout.strip()
    if found:
        return
    message = "no Chinese font installed (apt-get install fonts-noto-cjk)"
    if IN_CI:
        pytest.fail(f"CI=true: {message}", pytrace=False)
    pytest.skip(message)


class DevTools:
    """Just enough of the Chrome DevTools protocol: commands on one page session, answers matched by id."""

    def __init__(self, socket) -> None:
        self.socket = socket
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future] = {}
        self.session: str | None = None
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        async for message in self.socket:
            data = json.loads(message)
            future = self.pending.pop(data.get("id"), None)
            if future is not None and not future.done():
                future.set_result(data)

    async def send(self, method: str, session: bool = True, **params):
        ident = next(self.ids)
        future = asyncio.get_running_loop().create_future()
        self.pending[ident] = future
        message = {"id": ident, "method": method, "params": params}
        if session and self.session:
            message["sessionId"] = self.session
        await self.socket.send(json.dumps(message))
        reply = await asyncio.wait_for(future, 30)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    async def open_page(self, url: str) -> None:
        target = await self.send("Target.createTarget", session=False, url="about:blank")
        attached = await self.send("Target.attachToTarget", session=False, targetId=target["targetId"], flatten=True)
        self.session = attached["sessionId"]
        await self.send("Page.enable")
        await self.send("Emulation.setDeviceMetricsOverride", width=1600, height=1000, deviceScaleFactor=1,
                        mobile=False)
        await self.send("Page.navigate", url=url)

    async def evaluate(self, expression: str):
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page error: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 30) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not await self.evaluate(expression):
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out waiting for: {expression}")
            await asyncio.sleep(0.2)

    async def screenshot(self, path: Path) -> None:
        metrics = await self.send("Page.getLayoutMetrics")
        size = metrics["cssContentSize"]
        shot = await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                               clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1})
        path.write_bytes(base64.b64decode(shot["data"]))

    async def close(self) -> None:
        self.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.reader


@contextlib.asynccontextmanager
async def chromium(executable: str, profile: Path):
    process = await asyncio.create_subprocess_exec(executable, *FLAGS, f"--user-data-dir={profile}", "about:blank",
                                                   stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        endpoint = None
        async with asyncio.timeout(30):
            while endpoint is None:
                line = (await process.stderr.readline()).decode(errors="replace")
                if not line:
                    raise RuntimeError("chromium exited before it listened for DevTools")
                if match := re.search(r"DevTools listening on (ws://\S+)", line):
                    endpoint = match.group(1)
        drain = asyncio.ensure_future(process.stderr.read())  # keep the pipe from filling up
        async with connect(endpoint, max_size=None) as socket:
            tools = DevTools(socket)
            try:
                yield tools
            finally:
                await tools.close()
        drain.cancel()
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()


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

    executable = chromium_or_skip()
    cjk_font_or_skip()
    async with serve_board(settings, store, fake_classifier, TextSimilarity(trained_router)) as board:
        token = await board.token("demo-supervisor", "dashboard")
        async with chromium(executable, tmp_path / "profile") as page:
            await page.open_page(f"{board.base}/dashboard#token={token}")
            await page.wait_for(CHARTS_DRAWN)
            # The token left the address bar; the headline is the API's summary for the same period.
            assert "token" not in await page.evaluate("location.href")
            shown = await page.evaluate(HEADLINE)
            api = (await board.get("/api/v1/stats/summary", token, period="30d")).json()["figures"]["rates"]
            for name, card in shown.items():
                assert card == {key: api[name][key] for key in ("display", "numerator", "denominator")}, name
            # By hand: March's 5 on time of 7 decided, and G (28 February, never accepted): 5 of 8.
            assert shown["response"] == {"display": "62.5%", "numerator": 5, "denominator": 8}
            assert await page.evaluate("document.querySelectorAll('#overdue-table tbody tr').length") == 4
            grid_rows = await page.evaluate("document.querySelectorAll('#grid-table tbody tr').length")
            assert grid_rows == len((await board.get("/api/v1/stats/breakdown", token, period="30d", by="grid"))
                                    .json()["groups"])
            font = await page.evaluate("getComputedStyle(document.querySelector('h1')).fontFamily")
            assert "Noto Sans CJK SC" in font
            await page.screenshot(tmp_path / "dashboard.png")

            # The live feed: a new order appears within a poll or two, on top.
            await board.app.ctx.orders.submit(openid="resident-live", text="村口路灯又不亮了")
            await page.wait_for("document.querySelector('#feed li').textContent.includes('村口路灯又不亮了')", 15)
            await page.screenshot(tmp_path / "dashboard-live.png")

            # 热点诉求: three residents of 楼坝村 report one broken lamp; the panel lists them once the feed sees them.
            listed = (await board.get("/api/v1/stats/hotspots", token)).json()["hotspots"]
            assert await page.evaluate("document.body.dataset.hotspots") == str(len(listed))
            louba = {"latitude": 28.641, "longitude": 104.406}
            numbers = [(await board.app.ctx.orders.submit(openid=f"resident-hot-{i}", text=text, location=louba))
                       .order.number
                       for i, text in enumerate(["三组路灯坏了,晚上一片黑", "三组的路灯不亮好几天了", "路灯坏了晚上看不见"])]
            await page.wait_for(f"document.body.dataset.hotspots === '{len(listed) + 1}'", 15)
            [row] = [row for row in await page.evaluate(HOTSPOT_ROWS) if numbers[0] in row[5]]
            assert row[0] == "楼坝村" and row[1] == "3 件" and "路灯" in row[2]
            assert row[5].split() == numbers and row[7] == "—"  # listed; the sweep (not running here) tells
            await page.screenshot(tmp_path / "dashboard-hotspots.png")
    shot = tmp_path / "dashboard.png"
    assert shot.stat().st_size > 50_000
    print(f"screenshot: {shot}")
