"""The workbench in a real browser: one sidan server on loopback per test module and backend (demo township, fake
WeChat, the keyword classifier), one headless Debian Chromium driven by Playwright (never downloaded:
executable_path), and pages signed in through the (fake) official account's web authorisation, as in WeChat."""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from tortoise.expressions import F

from api.app import create_app
from api.demo.township import load_demo_data
from orders import db, models
from orders.store import MemoryStore, RedisStore
from tests.conftest import require_service
from tests.e2e.api_harness import API, Api
from tests.e2e.browser import browser_or_skip, chromium
from tests.fake_wechat import FakeWeChat
from tests.support import (
    POSTGRES_URL, REDIS_URL, FakeClassifier, create_postgres_database, drop_postgres_database, free_port, make_settings,
    running_server,
)

PHONE = {"viewport": {"width": 360, "height": 740}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}
PC = {"viewport": {"width": 1366, "height": 768}}
WECHAT_UA = ("Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 "
             "Mobile Safari/537.36 MicroMessenger/8.0.47")
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("SIDAN_TEST_SCREENSHOTS") or ROOT / "var" / "test-screenshots")
# The README's two screenshots are made by the tests; they are rewritten only when asked (SIDAN_DOCS_SCREENSHOTS=1),
# so a test run leaves the repository as it was.
DOCS = ROOT / "docs" if os.environ.get("SIDAN_DOCS_SCREENSHOTS") else SCREENSHOTS


@dataclass
class Bench(Api):
    """The API harness's logins and calls, plus the browser and the backend it runs on."""

    backend: str = ""
    browser: object = None

    async def call(self, method: str, openid: str, path: str, json: dict | None = None) -> httpx.Response:
        return await self.client.request(method, API + path, json=json, headers=await self.headers(openid))

    async def submit(self, text: str, openid: str = "oResidentWb0001", **kwargs) -> str:
        return (await self.orders.submit(openid=openid, text=text, **kwargs)).order.number

    async def sign_in(self, page, openid: str, next_path: str = "/m/") -> None:
        """As in WeChat: /m/auth → the (fake) authorize page, which says `openid` opened it → /m/auth/callback →
        the app, signed in (the official account's openid: a bound staff member's oa_openid, else a resident)."""
        self.wechat.web_openid = openid
        await page.goto(f"{self.base}/m/auth?{urlencode({'next': next_path})}")
        await page.wait_for_function("() => !location.hash.includes('access_token')")

    @contextlib.asynccontextmanager
    async def page(self, name: str, device: dict, openid: str | None = None, next_path: str = "/m/", **options):
        """A fresh browser context (its own localStorage) signed in as `openid`; a screenshot on failure."""
        context = await self.browser.new_context(locale="zh-CN", **device, **options)
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.set_default_timeout(10_000)
        try:
            if openid:
                await self.sign_in(page, openid, next_path)
            yield page
            assert not errors, f"script errors on the page: {errors}"
        except BaseException:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shot = SCREENSHOTS / f"{name}-{self.backend}.png"
            with contextlib.suppress(Exception):
                await page.screenshot(path=str(shot), full_page=True)
                print(f"screenshot of the failure: {shot}")
            raise
        finally:
            await context.close()


@contextlib.asynccontextmanager
async def _database(backend: str, tmp_path_factory):
    """A migrated database of its own for the module (PostgreSQL: created and dropped with it)."""
    if backend == "sqlite":
        url = f"sqlite://{tmp_path_factory.mktemp('workbench') / 'sidan.sqlite3'}"
        await db.migrate(url)
        yield url
        return
    require_service("PostgreSQL", POSTGRES_URL, 5432)
    require_service("Redis", REDIS_URL, 6379)
    url = await create_postgres_database(POSTGRES_URL)
    try:
        await db.migrate(url)
        yield url
    finally:
        await drop_postgres_database(POSTGRES_URL, url)


@contextlib.asynccontextmanager
async def serve_workbench(backend: str, tmp_path_factory):
    executable = browser_or_skip()
    async with (_database(backend, tmp_path_factory) as database_url,
                _served(backend, database_url, executable) as bench):
        yield bench


@contextlib.asynccontextmanager
async def _served(backend: str, database_url: str, executable: str):
    store = MemoryStore() if backend == "sqlite" else RedisStore(REDIS_URL, prefix="sidan-test:")
    if backend == "postgres":
        await store._redis.flushdb()
    wechat = FakeWeChat().start()
    port = free_port()
    settings = make_settings(database_url, REDIS_URL if backend == "postgres" else "").with_overrides(
        wechat={"api_base": wechat.base_url, "oauth_base": wechat.base_url},
        app={"run_background_tasks": False, "public_url": f"http://127.0.0.1:{port}"})
    app = create_app(settings, classifier=FakeClassifier(), store=store)
    try:
        async with (running_server(app, port=port) as base, httpx.AsyncClient(base_url=base, timeout=30) as client,
                    chromium(executable) as browser):
            await load_demo_data()
            # the demo's staff are bound in the official account too, under the same openid: the pages sign in
            # through its web authorisation as staff would
            await models.Staff.filter(openid__isnull=False).update(oa_openid=F("openid"))
            yield Bench(base, client, app, wechat, backend=backend, browser=browser)
    finally:
        wechat.stop()
        if backend == "postgres":
            await store.close()


def workbench_fixture():
    """The module's server and browser, once per backend."""
    @pytest.fixture(scope="module", params=["sqlite", "postgres"])
    async def bench(request, tmp_path_factory):
        async with serve_workbench(request.param, tmp_path_factory) as served:
            yield served
    return bench
