"""A township's go-live shell for tests/e2e/test_go_live.py: an empty database of the backend, the environment
README's Production section sets (SIDAN_ENV=production, the account's credentials and templates, an https public
address), WeChat's API at the fake on loopback, and `sidan serve` run as a process of its own."""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.e2e.test_hardening_shutdown import wait_until_serving
from tests.e2e.test_wechat_cli import ACCOUNT, NOTIFY, STAFF, SUBSCRIBE, SURVEY
from tests.fake_wechat import FakeWeChat, Received
from tests.support import (
    POSTGRES_URL, PRODUCTION, REDIS_URL, REPO, create_postgres_database, drop_postgres_database, free_port,
)

PUBLIC = "https://sidan.xinan.example.gov.cn"  # where phones reach the server (a proxy forwards to it)
ORDER_NUMBER = re.compile(r"[A-Z]{1,6}\d{8}-\d{4}")


@dataclass
class Township:
    database_url: str
    env: dict[str, str]
    wechat: FakeWeChat
    log: Path
    templates: list[dict] = field(default_factory=lambda: [SURVEY, NOTIFY, STAFF])
    subscribe_templates: list[dict] = field(default_factory=lambda: [SUBSCRIBE])


@contextlib.asynccontextmanager
async def township_shell(backend: str, tmp_path: Path, model: Path, wechat: FakeWeChat):
    """An empty database (not migrated) and the operator's SIDAN_* variables."""
    if backend == "sqlite":
        url, drop = f"sqlite://{tmp_path / 'xinan.sqlite3'}", None
    else:
        url = await create_postgres_database(POSTGRES_URL)
        drop = url
    env = {**PRODUCTION, **ACCOUNT, "SIDAN_APP_PUBLIC_URL": PUBLIC, "SIDAN_WECHAT_API_BASE": wechat.base_url,
           "SIDAN_REDIS_URL": REDIS_URL if backend == "postgres" else "", "SIDAN_MEDIA_URL": str(tmp_path / "media"),
           "SIDAN_CLASSIFIER_MODEL_PATH": str(model),
           # the background loops look more often than in production, so the test does not wait seconds
           "SIDAN_OUTBOX_POLL_SECONDS": "0.2", "SIDAN_MEDIA_FETCH_POLL_SECONDS": "0.2"}
    try:
        yield Township(url, env, wechat, tmp_path / "server.log")
    finally:
        if drop:
            await drop_postgres_database(POSTGRES_URL, drop)


@contextlib.asynccontextmanager
async def serving(township: Township):
    """`sidan serve` in a process of its own; yields its loopback base and an HTTP client on it."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("SIDAN_")}
    env.update(township.env, SIDAN_DATABASE_URL=township.database_url)
    with open(township.log, "a") as log:
        process = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--host", "127.0.0.1", "--port",
                                    str(port), "--workers", "1"], cwd=REPO, env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        try:
            await wait_until_serving(base, process, seconds=60)
        except AssertionError:
            raise AssertionError(f"sidan serve did not start:\n{township.log.read_text()[-3000:]}") from None
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            yield base, client
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def report_number(reply: str | None) -> str:
    found = ORDER_NUMBER.search(reply or "")
    assert found, f"no order number in the reply: {reply!r}"
    return found.group(0)


async def first_message(wechat: FakeWeChat, openid: str, containing: str = "", seconds: float = 20.0) -> Received:
    """The first message the fake WeChat received for `openid` (whose body contains `containing`)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for message in wechat.messages_to(openid):
            if containing in json.dumps(message.body, ensure_ascii=False):
                return message
        await asyncio.sleep(0.1)
    raise AssertionError(f"WeChat received nothing for {openid} containing {containing!r}: "
                         f"{[m.body for m in wechat.messages_to(openid)]}")
