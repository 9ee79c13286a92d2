"""Test doubles and helpers shared by the suites."""
from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from orders.config import Settings, load_settings

REPO = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() == "true"
POSTGRES_URL = os.environ.get("SIDAN_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")


def _redis_of_this_worker(url: str) -> str:
    """Under pytest-xdist (`make test` runs two workers) each worker flushes its own Redis database: gw0 the one
    configured, gw1 the one below it, and so on (Redis has 16)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return url
    parts = urlsplit(url)
    index = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(index - int(worker[2:])) % 16}"))


REDIS_URL = _redis_of_this_worker(os.environ.get("SIDAN_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))
# The media files of this test run (never the repository's var/media); removed at the end of the session.
MEDIA_ROOT = Path(tempfile.gettempdir()) / f"sidan-test-media-{os.getpid()}"

# What an operator sets for production: real appids and secrets, the EncodingAESKey (safe mode), a random JWT secret
# (`openssl rand -hex 32`), the https address phones reach the server at.
PRODUCTION = {
    "SIDAN_ENV": "production",
    "SIDAN_WECHAT_TOKEN": "realtoken",
    "SIDAN_WECHAT_APPID": "wx5e7c2b9a41d3f086",
    "SIDAN_WECHAT_AES_KEY": "Xq3vN8rT2mK5pW9sL4hJ7fD1cB6gZ0yU3eA8iO5nR2w",
    "SIDAN_WECHAT_APP_SECRET": "real-app-secret",
    "SIDAN_WECHAT_MINIAPP_APPID": "wx8a1f0c3e9b2d4765",
    "SIDAN_WECHAT_MINIAPP_SECRET": "real-miniapp-secret",
    "SIDAN_AUTH_JWT_SECRET": "3f9c1e7a52b04d68a9e1c7f30b5d2846e0a97c3b1f5d8e24c6a0b9f7d3e1c852",
    "SIDAN_APP_PUBLIC_URL": "https://sidan.example.gov.cn",
}


@dataclass(frozen=True)
class FakePrediction:
    """classifiers.Prediction's fields, with its defaults."""

    category: str | None
    department: str | None
    urgency: str
    confidence: float
    terms: tuple[str, ...] = ()
    danger: bool = False
    label: str | None = None
    danger_kind: str | None = None
    danger_advice: str | None = None
    request: bool = True
    not_request_reason: str | None = None


# The fake's stand-in for the learned screen: a few obvious non-requests by pattern (the rules are the real ones).
FAKE_NOT_REQUESTS = (
    (re.compile(r"^(你好|您好|在吗|hello|hi)\W*\d*$", re.I), "greeting"),
    (re.compile(r"^(测试|test)(一下)?\W*\d*$", re.I), "test"),
    (re.compile(r"^(哈哈+|吃了吗|吃饭了吗|今天天气不错|你是机器人吗)\W*$"), "chitchat"),
)
FAKE_DANGER = {"着火": ("fire", "请立即拨打 119;先带家人撤到安全的地方。"), "煤气泄漏": ("gas", "不要打火,打开门窗通风。"),
               "拿刀": ("violence", "请先躲到安全的地方,立即拨打 110。")}


def fake_screen(text: str) -> str | None:
    """The reason a text is no request, by the screen's real rules and FAKE_NOT_REQUESTS; None for a request."""
    from classifiers.screen import rule_reason
    from classifiers.text import normalize

    normalized = normalize(text)
    reason = rule_reason(normalized)
    return reason or next((why for pattern, why in FAKE_NOT_REQUESTS if pattern.match(normalized)), None)


@dataclass
class FakeClassifier:
    """A keyword router standing in for the model where the model is not the subject of the test; it screens out
    non-requests (fake_screen) and names the danger of a few words (FAKE_DANGER), as the model does."""

    rules: list[tuple[str, str, str, float]] = field(default_factory=lambda: [
        ("路灯", "社会民生", "jianshe", 0.93),
        ("低保", "社会民生", "minzheng", 0.91),
        ("着火", "安全生产", "anjian", 0.95),
        ("煤气", "安全生产", "anjian", 0.9),
        ("秸秆", "生态环境", "huanbao", 0.88),
        ("吵架", "平安建设", "sifasuo", 0.41),  # unsure: goes to the grid worker
    ])
    calls: int = 0

    def predict(self, text: str) -> FakePrediction:
        self.calls += 1
        kind, advice = next((found for word, found in FAKE_DANGER.items() if word in text), (None, None))
        reason = None if kind else fake_screen(text)
        flags = {"danger": kind is not None, "danger_kind": kind, "danger_advice": advice,
                 "request": reason is None, "not_request_reason": reason}
        urgency = "急难事" if kind else "操心事"
        for word, category, department, confidence in self.rules:
            if word in text:
                return FakePrediction(category, department, urgency, confidence, (word,), **flags)
        return FakePrediction("社会民生", "minzheng", urgency, 0.2, (), **flags)

    def normalize(self, text: str) -> str:
        return " ".join(text.split())


def make_settings(database_url: str, redis_url: str = "", **sections: dict[str, Any]) -> Settings:
    # Background loops (outbox, sweep) only where a test asks for them: they would reach for WeChat.
    env = {"SIDAN_ENV": "test", "SIDAN_DATABASE_URL": database_url, "SIDAN_REDIS_URL": redis_url,
           "SIDAN_APP_RUN_BACKGROUND_TASKS": "false", "SIDAN_MEDIA_URL": str(MEDIA_ROOT)}
    settings = load_settings(env=env)
    return settings.with_overrides(**sections) if sections else settings


def photo_bytes(color: tuple[int, int, int] = (200, 40, 40), fmt: str = "JPEG") -> bytes:
    """A small real image (a different color: different bytes)."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (16, 12), color).save(buffer, fmt)
    return buffer.getvalue()


def reachable(host: str, port: int, timeout: float = 0.5) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def create_postgres_database(base_url: str) -> str:
    """A fresh database per test run, so runs never see each other's rows."""
    import asyncpg

    name = f"sidan_test_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(base_url.replace("postgres://", "postgresql://", 1))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return base_url.rsplit("/", 1)[0] + "/" + name


async def drop_postgres_database(base_url: str, url: str) -> None:
    import asyncpg

    name = url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(base_url.replace("postgres://", "postgresql://", 1))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def running_server(app, host: str = "127.0.0.1", port: int | None = None):
    """Serve a Sanic app on a loopback port inside the test's event loop; yields the base URL."""
    port = port or free_port()
    server = await app.create_server(host=host, port=port, access_log=False, return_asyncio_server=True)
    await server.startup()
    await server.before_start()
    await server.after_start()
    serving = asyncio.ensure_future(server.serve_forever())
    try:
        yield f"http://{host}:{port}"
    finally:
        await server.before_stop()
        server.close()
        await server.wait_closed()
        await server.after_stop()
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await serving


def fail_inserts_into(monkeypatch, table: str, error: Exception) -> None:
    """Every INSERT into `table` fails with `error`, on whichever path it takes (one row through the ORM, many rows
    in one statement): the database refusing or losing the connection at that point of a transaction."""
    from tortoise import Tortoise

    client = type(Tortoise.get_connection("default"))
    for method in ("execute_query", "execute_insert", "execute_query_dict"):
        real = getattr(client, method)

        async def failing(self, sql, values=None, _real=real):
            words = sql.replace('"', " ").replace("`", " ").split()
            if words[:3] == ["INSERT", "INTO", table]:
                raise error
            return await _real(self, sql, values)

        monkeypatch.setattr(client, method, failing)


def run_sidan(database_url: str, *args: str, cwd: Path = REPO, path: str | None = None,
              timeout: float = 120, **env_vars: str) -> subprocess.CompletedProcess:
    """`sidan ARGS` in a terminal of its own, on this database (and the in-process store); `cwd` is where relative
    paths (var/media) resolve, `path` that terminal's PATH, `env_vars` more SIDAN_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIDAN_")}
    env.update({"SIDAN_DATABASE_URL": database_url, "SIDAN_REDIS_URL": "", **env_vars})
    if cwd != REPO:
        env["PYTHONPATH"] = str(REPO)
    if path is not None:
        env["PATH"] = path
    return subprocess.run([sys.executable, "-m", "api.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
