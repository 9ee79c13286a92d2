"""The API served on loopback for a test: the app, the fake WeChat API behind login, demo data, and logins."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import httpx
from sanic import Sanic

from api.app import create_app
from api.demo.township import load_demo_data
from orders import models
from tests.fake_wechat import FakeWeChat
from tests.support import free_port, running_server

API = "/api/v1"
ADMIN, SUPERVISOR, GRID_WORKER = "demo-admin", "demo-supervisor", "demo-grid_worker"
JIANSHE = "demo-dept_staff-jianshe"  # 村镇建设办: where the fake classifier sends 路灯
MINZHENG = "demo-dept_staff-minzheng"


@dataclass
class Api:
    base: str
    client: httpx.AsyncClient
    app: Sanic
    wechat: FakeWeChat
    tokens: dict[str, dict] = field(default_factory=dict)

    @property
    def orders(self):
        return self.app.ctx.orders

    async def login(self, openid: str) -> dict:
        response = await self.client.post(f"{API}/auth/login", json={"code": f"code-{openid}"})
        assert response.status_code == 200, response.text
        self.tokens[openid] = response.json()
        return response.json()

    async def headers(self, openid: str, **extra: str) -> dict[str, str]:
        if openid not in self.tokens:
            await self.login(openid)
        return {"Authorization": f"Bearer {self.tokens[openid]['access_token']}", **extra}

    async def get(self, openid: str | None, path: str, **kwargs) -> httpx.Response:
        headers = await self.headers(openid) if openid else {}
        return await self.client.get(API + path, headers=headers, **kwargs)

    async def post(self, openid: str | None, path: str, json: dict | None = None, **headers: str) -> httpx.Response:
        base = await self.headers(openid) if openid else {}
        return await self.client.post(API + path, json=json, headers={**base, **headers})

    async def patch(self, openid: str | None, path: str, json: dict | None = None) -> httpx.Response:
        headers = await self.headers(openid) if openid else {}
        return await self.client.patch(API + path, json=json, headers=headers)

    async def submit(self, text: str, openid: str = "oResident0001", **kwargs) -> str:
        """A resident's request through the use case (the WeChat door is tested on its own)."""
        return (await self.orders.submit(openid=openid, text=text, **kwargs)).order.number

    async def events(self, number: str) -> list[str]:
        order = await models.Order.get(number=number)
        return await models.OrderEvent.filter(order_id=order.id).order_by("id").values_list("action", flat=True)


@contextlib.asynccontextmanager
async def serve_api(settings, store, classifier, clock=None, demo: bool = True, background: bool = False,
                    similarity=None):
    wechat = FakeWeChat().start()
    port = free_port()  # known before the app is built: its links (photos[].url) point at this server
    # No background loops unless asked: most tests look at the outbox rows themselves.
    settings = settings.with_overrides(wechat={"api_base": wechat.base_url, "oauth_base": wechat.base_url}, app={
        "run_background_tasks": background, "public_url": f"http://127.0.0.1:{port}"})
    app = create_app(settings, classifier=classifier, similarity=similarity, store=store, clock=clock)
    try:
        async with running_server(app, port=port) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
            if demo:
                await load_demo_data()
            yield Api(base, client, app, wechat)
    finally:
        wechat.stop()
