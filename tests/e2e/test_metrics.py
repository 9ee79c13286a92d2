from __future__ import annotations

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
