"""The stats API and the dashboard on loopback over the fixed history of tests/integration/stats_history.py."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime

import httpx
from sanic import Sanic

from api.app import create_app
from api.auth import dashboard_token, issue_tokens
from orders import models
from orders.clock import FrozenClock
from tests.integration.stats_history import NOW, build_history
from tests.support import running_server


@dataclass
class Board:
    base: str
    client: httpx.AsyncClient
    app: Sanic
    numbers: dict[str, str]

    async def token(self, openid: str, kind: str = "access", hours: int = 1, signed_at: datetime | None = None) -> str:
        """Tokens are checked against the real clock (PyJWT), so they are signed by it, not by the frozen NOW."""
        staff = await models.Staff.get(openid=openid)
        settings = self.app.ctx.settings
        if kind == "dashboard":
            return dashboard_token(settings, staff, hours, now=signed_at)
        return issue_tokens(settings, staff, now=signed_at)[f"{kind}_token"]

    async def get(self, path: str, token: str | None, **params) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return await self.client.get(path, headers=headers, params=params)


@contextlib.asynccontextmanager
async def serve_board(settings, store, classifier, similarity=None):
    # No background sweep: it would escalate the fixed history while the test reads it.
    settings = settings.with_overrides(app={"run_background_tasks": False})
    app = create_app(settings, classifier=classifier, similarity=similarity, store=store, clock=FrozenClock(NOW))
    async with running_server(app) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
        numbers = await build_history(settings, classifier)
        yield Board(base, client, app, numbers)
