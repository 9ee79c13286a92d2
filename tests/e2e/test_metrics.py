from __future__ import annotations

import asyncio

import httpx

from api.app import create_app
from api.demo.township import load_demo_data
from bot.chat import Simulator
from tests.support import running_server


async def test_metrics_expose_requests_orders_outbox_confidence_and_intake(settings, store, fake_classifier):
    app = create_app(settings, classifier=fake_classifier, store=store)
    async with running_server(app) as base, httpx.AsyncClient(base_url=base) as client:
        await load_demo_data()
        await app.ctx.orders.submit(openid="oM", text="路灯坏了")
        wechat = app.ctx.settings.wechat
        resident = Simulator(base, wechat.token, "o_metrics_resident_01", appid=wechat.appid)
        reply = await resident.send_async(resident.text_message("新滩村的路灯坏了三天了"), client)
        assert "工单号" in reply
        health = await client.get("/healthz", headers={"X-Request-ID": "trace-abcdef12"})
        assert health.headers["X-Request-ID"] == "trace-abcdef12"
        generated = await client.get("/healthz")
        assert len(generated.headers["X-Request-ID"]) == 32
        response = await client.get("/metrics")
    assert response.status_code == 200
    text = response.text
    assert 'sidan_requests_total{method="GET",route="healthz",status="200"} 2.0' in text
    assert 'sidan_orders{state="dispatched"} 2.0' in text
    assert 'sidan_outbox_backlog{status="pending"} 2.0' in text
    assert "sidan_classifier_confidence_count 2.0" in text
    # the report sent to /wechat went through the intake's group commit (the direct submit above did not)
    assert "sidan_intake_batches_total 1.0" in text
    assert "sidan_intake_reports_total 1.0" in text
    assert "sidan_intake_fallbacks_total 0.0" in text
    assert "sidan_intake_pending 0.0" in text
    assert "sidan_request_seconds_bucket" in text


async def test_metrics_need_the_bearer_token_when_one_is_set(settings, store, fake_classifier):
    token = "scrape-token-7f3a9c1e5b2d"
    app = create_app(settings.with_overrides(metrics={"token": token}), classifier=fake_classifier, store=store)
    async with running_server(app) as base, httpx.AsyncClient(base_url=base) as client:
        refused = [await client.get("/metrics", headers=headers) for headers in
                   ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": f"Basic {token}"})]
        allowed = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        health = await client.get("/healthz")
    for response in refused:
        assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"
        assert "sidan_" not in response.text
    assert allowed.status_code == 200 and "sidan_requests_total" in allowed.text
    assert health.status_code == 200  # the token guards /metrics alone


def gauge_queries(monkeypatch) -> list[str]:
    """The statements that read the database gauges (orders by state, outbox backlog: both GROUP BY)."""
    from tortoise import Tortoise

    client = type(Tortoise.get_connection("default"))
    seen: list[str] = []
    for method in ("execute_query", "execute_query_dict"):
        real = getattr(client, method)

        async def counting(self, sql, values=None, _real=real):
            if "GROUP BY" in sql.upper():
                seen.append(sql)
            return await _real(self, sql, values)

        monkeypatch.setattr(client, method, counting)
    return seen


async def test_database_gauges_are_read_at_most_once_per_10_seconds(settings, store, fake_classifier, monkeypatch):
    app = create_app(settings, classifier=fake_classifier, store=store)
    now = [1000.0]
    app.ctx.metrics.monotonic = lambda: now[0]
    async with running_server(app) as base, httpx.AsyncClient(base_url=base) as client:
        await load_demo_data()
        await app.ctx.orders.submit(openid="oM", text="路灯坏了")
        queries = gauge_queries(monkeypatch)
        scrapes = [await client.get("/metrics") for _ in range(5)]
        scrapes += await asyncio.gather(*[client.get("/metrics") for _ in range(5)])
        assert all(response.status_code == 200 for response in scrapes)
        assert len(queries) == 2, queries  # one read of each gauge for ten scrapes
        await app.ctx.orders.submit(openid="oM", text="路灯又坏了")
        now[0] += 9.9
        assert 'sidan_orders{state="dispatched"} 1.0' in (await client.get("/metrics")).text  # still the cached read
        now[0] += 0.2
        assert 'sidan_orders{state="dispatched"} 2.0' in (await client.get("/metrics")).text
        assert len(queries) == 4
