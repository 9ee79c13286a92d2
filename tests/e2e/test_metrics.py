from __future__ import annotations

import httpx

from api.app import create_app
from orders.demo import load_demo_data
from tests.support import running_server


async def test_metrics_expose_requests_orders_outbox_and_confidence(settings, store, fake_classifier):
    app = create_app(settings, classifier=fake_classifier, store=store)
    async with running_server(app) as base, httpx.AsyncClient(base_url=base) as client:
        await load_demo_data()
        await app.ctx.orders.submit(openid="oM", text="路灯坏了")
        health = await client.get("/healthz", headers={"X-Request-ID": "trace-abcdef12"})
        assert health.headers["X-Request-ID"] == "trace-abcdef12"
        generated = await client.get("/healthz")
        assert len(generated.headers["X-Request-ID"]) == 32
        response = await client.get("/metrics")
    assert response.status_code == 200
    text = response.text
    assert 'sidan_requests_total{method="GET",route="healthz",status="200"} 2.0' in text
    assert 'sidan_orders{state="dispatched"} 1.0' in text
    assert 'sidan_outbox_backlog{status="pending"} 1.0' in text
    assert "sidan_classifier_confidence_count 1.0" in text
    assert "sidan_request_seconds_bucket" in text
