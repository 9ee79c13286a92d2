"""The server on loopback: /healthz reports the database and the store; bad starts are refused clearly."""
from __future__ import annotations

import gc
import os
import subprocess
import sys

import httpx

from api.app import create_app
from orders.store import RedisStore
from tests.support import REPO, running_server


async def test_healthz_reports_database_and_store(settings, store, fake_classifier):
    app = create_app(settings, classifier=fake_classifier, store=store)
    async with running_server(app) as base, httpx.AsyncClient(base_url=base) as client:
        response = await client.get("/healthz")
        assert response.status_code == 200
        body = response.json()
        assert body["database"] == "ok" and body["store"] == "ok"
        assert body["store_kind"] == store.kind
        missing = await client.get("/no-such-page")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"


async def test_healthz_says_when_the_store_is_down(settings, fake_classifier):
    dead_redis = RedisStore("redis://127.0.0.1:1/0")
    app = create_app(settings, classifier=fake_classifier, store=dead_redis)
    async with running_server(app) as base, httpx.AsyncClient(base_url=base) as client:
        response = await client.get("/healthz")
    assert response.status_code == 200  # the database answers; the store's trouble is reported, not fatal
    assert response.json()["store"].startswith("error") and response.json()["status"] == "degraded"
    await dead_redis.close()


def test_serve_refuses_several_workers_on_the_in_process_store(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIDAN_")}
    env.update(SIDAN_DATABASE_URL=f"sqlite://{tmp_path}/x.sqlite3", SIDAN_REDIS_URL="")
    result = subprocess.run([sys.executable, "-m", "api.cli", "serve", "--workers", "2"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "SIDAN_REDIS_URL" in result.stderr and "--workers 1" in result.stderr


def test_a_malformed_setting_stops_the_cli_naming_the_key(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIDAN_")}
    env.update(SIDAN_APP_PORT="eighty")
    result = subprocess.run([sys.executable, "-m", "api.cli", "migrate"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "app.port" in result.stderr


async def test_a_serving_worker_freezes_what_it_loaded_at_start_but_a_test_app_does_not(settings, store, fake_classifier):
    gc.unfreeze()
    try:
        for freeze, frozen in ((None, False), (True, True)):  # None: as the settings say (env test: no)
            app = create_app(settings.with_overrides(app={"run_background_tasks": False}), classifier=fake_classifier,
                             store=store, freeze_heap=freeze)
            async with running_server(app) as base, httpx.AsyncClient(base_url=base) as client:
                assert (gc.get_freeze_count() > 0) is frozen, freeze
                assert (await client.get("/healthz")).status_code == 200
            gc.unfreeze()
    finally:
        gc.unfreeze()  # the rest of the test session collects as usual
