"""Liveness and readiness: /healthz answers 200 while the process serves (the container's health check); /readyz
answers 503 with its reasons while this deployment cannot serve any resident (database down, a migration pending, the
outbox loop failing, no township set up), 200 when it can, with what some residents lack under warnings. And
production refuses to start on a database that is not migrated."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import httpx
import pytest
from tortoise.migrations.api.migrate import migrate as tortoise_migrate

from api import readiness
from api.app import create_app
from api.demo.township import load_demo_data
from orders import db, models
from orders.clock import Clock
from orders.dispatcher import Dispatcher
from orders.township import load_township_file
from orders.township.apply import apply_township
from tests.support import (
    POSTGRES_URL, PRODUCTION, REPO, create_postgres_database, drop_postgres_database, free_port, running_server,
)

BEFORE_LAST = "0003_outbox_claim"  # 0004_rating_at_index and what follows are pending on such a database


async def migrate_up_to(url: str, name: str) -> None:
    await tortoise_migrate(config=db.tortoise_config(url), target=f"{db.APP_LABEL}.{name}")
    await db.close_db()


@pytest.fixture
async def unmigrated_url(backend, request, tmp_path):
    """A database of the current backend migrated only up to BEFORE_LAST."""
    if backend == "sqlite":
        url = f"sqlite://{tmp_path / 'old.sqlite3'}"
    else:
        request.getfixturevalue("postgres_base")  # PostgreSQL answers (mandatory in CI)
        url = await create_postgres_database(POSTGRES_URL)
    await migrate_up_to(url, BEFORE_LAST)
    yield url
    if backend == "postgres":
        await drop_postgres_database(POSTGRES_URL, url)


async def probe(client: httpx.AsyncClient) -> tuple[int, dict]:
    response = await client.get("/readyz")
    return response.status_code, response.json()


def codes(body: dict) -> list[str]:
    return [reason["code"] for reason in body["reasons"]]


def warned(body: dict) -> list[str]:
    return [warning["code"] for warning in body["warnings"]]


async def test_ready_when_the_deployment_can_serve(settings, store, fake_classifier):
    app = create_app(settings, classifier=fake_classifier, store=store)
    async with running_server(app) as base, httpx.AsyncClient(base_url=base) as client:
        await load_demo_data()  # every grid with its worker, every department staffed, a supervisor: all bound
        assert await probe(client) == (200, {"ready": True, "reasons": [], "warnings": []})


async def test_no_township_is_an_outage_a_grid_without_its_worker_only_a_warning(settings, store, fake_classifier,
                                                                                 monkeypatch):
    app = create_app(settings, classifier=fake_classifier, store=store)
    async with running_server(app) as base, httpx.AsyncClient(base_url=base) as client:
        status, body = await probe(client)
        assert status == 503 and codes(body) == ["township_not_set_up"]
        assert "sidan township apply" in body["reasons"][0]["message"]
        # 新安镇 with two of its three grid workers and its supervisor not yet bound: serves, says what is missing
        await apply_township(load_township_file(REPO / "tests/data/xinan-township.toml"), now=Clock().now())
        status, body = await probe(client)  # an outage is not remembered: back at the next probe
        assert status == 200 and body["ready"] is True and body["reasons"] == []
        assert warned(body).count("grid_worker_unbound") == 2 and "supervisor_unbound" in warned(body)
        assert any("XA-03" in warning["message"] for warning in body["warnings"])

        # what is found is remembered for DEPLOYMENT_CACHE_SECONDS: probes do not read the database each time
        await models.Department.all().update(active=False)
        await models.Staff.filter(role="grid_worker").update(active=False)
        assert (await probe(client))[0] == 200
        monkeypatch.setattr(readiness, "DEPLOYMENT_CACHE_SECONDS", 0.0)
        status, body = await probe(client)
        assert status == 503 and codes(body) == ["township_not_set_up"]


async def test_not_ready_while_the_database_is_down_but_alive(settings, store, fake_classifier):
    away = settings.with_overrides(database={"url": "postgres://postgres@127.0.0.1:1/sidan_away"})
    app = create_app(away, classifier=fake_classifier, store=store)
    async with running_server(app) as base, httpx.AsyncClient(base_url=base) as client:
        status, body = await probe(client)
        health = await client.get("/healthz")
    assert status == 503 and body["ready"] is False and codes(body) == ["database_unavailable"]
    assert "数据库" in body["reasons"][0]["message"]
    assert health.status_code == 200  # the process serves: the container must not be restarted for this
    assert health.json()["database"].startswith("error") and health.json()["status"] == "degraded"


async def test_not_ready_while_a_migration_is_pending_then_ready_once_migrated(settings, store, fake_classifier,
                                                                               unmigrated_url):
    app = create_app(settings.with_overrides(database={"url": unmigrated_url}), classifier=fake_classifier,
                     store=store)
    async with running_server(app) as base, httpx.AsyncClient(base_url=base) as client:
        status, body = await probe(client)
        assert status == 503 and codes(body) == ["migrations_pending"]
        message = body["reasons"][0]["message"]
        assert "0004_rating_at_index" in message and "sidan migrate" in message
        assert (await client.get("/healthz")).status_code == 200
        # the operator runs the command named, from another process
        env = {**os.environ, "SIDAN_ENV": "test", "SIDAN_DATABASE_URL": unmigrated_url}
        migrated = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "api.cli", "migrate"], cwd=REPO,
                                           env=env, capture_output=True, text=True, timeout=120)
        assert migrated.returncode == 0, migrated.stderr
        status, body = await probe(client)  # the schema is there; its township is not yet
        assert status == 503 and codes(body) == ["township_not_set_up"]
        await load_demo_data()
        assert await probe(client) == (200, {"ready": True, "reasons": [], "warnings": []})


async def wait_for_status(client: httpx.AsyncClient, status: int, seconds: float = 10) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        answered, body = await probe(client)
        if answered == status or time.monotonic() > deadline:
            assert answered == status, body
            return body
        await asyncio.sleep(0.05)


async def test_not_ready_while_the_outbox_loop_keeps_failing(settings, store, fake_classifier, monkeypatch):
    running = settings.with_overrides(app={"run_background_tasks": True}, outbox={"poll_seconds": 0.02})
    app = create_app(running, classifier=fake_classifier, store=store)
    async with running_server(app) as base, httpx.AsyncClient(base_url=base) as client:
        await load_demo_data()
        assert (await probe(client))[0] == 200

        async def claim_fails(self):
            raise ConnectionResetError("outbox claim failed (test)")

        monkeypatch.setattr(Dispatcher, "claim", claim_fails)
        body = await wait_for_status(client, 503)
        assert codes(body) == ["outbox_failing"] and "发送" in body["reasons"][0]["message"]
        monkeypatch.undo()
        await wait_for_status(client, 200)  # the loop recovered by itself


def test_production_refuses_to_start_on_a_database_that_is_not_migrated(tmp_path):
    url = f"sqlite://{tmp_path / 'old.sqlite3'}"
    asyncio.run(migrate_up_to(url, BEFORE_LAST))
    env = {key: value for key, value in os.environ.items() if not key.startswith("SIDAN_")}
    env.update(PRODUCTION, SIDAN_DATABASE_URL=url, SIDAN_REDIS_URL="")
    for command in (["serve", "--port", str(free_port())], ["worker", "--once"]):
        result = subprocess.run([sys.executable, "-m", "api.cli", *command], cwd=REPO, env=env, capture_output=True,
                                text=True, timeout=60)
        assert result.returncode != 0, command
        assert "sidan migrate" in result.stderr and "0004_rating_at_index" in result.stderr, result.stderr
        assert "SIDAN_DATABASE_URL" in result.stderr
