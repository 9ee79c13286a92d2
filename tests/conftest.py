"""Backends: every integration test runs on the embedded default (SQLite + in-process store) and, when
they answer, on PostgreSQL + Redis. With CI=true the real services are mandatory."""
from __future__ import annotations

import shutil
from urllib.parse import urlparse

import pytest
from tortoise import Tortoise

from orders import db
from orders.store import MemoryStore, RedisStore
from tests.support import (
    IN_CI, POSTGRES_URL, REDIS_URL, FakeClassifier, create_postgres_database, drop_postgres_database, reachable,
    make_settings,
)


def _service_up(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    return reachable(parsed.hostname or "127.0.0.1", parsed.port or default_port)


def require_service(name: str, url: str, default_port: int) -> None:
    if _service_up(url, default_port):
        return
    message = f"{name} not reachable at {url}"
    if IN_CI:
        pytest.fail(f"CI=true: {message} — the real-service run is mandatory in CI", pytrace=False)
    pytest.skip(f"{message}: the PostgreSQL/Redis run is skipped on this machine")


@pytest.fixture(scope="session")
async def postgres_base():
    require_service("PostgreSQL", POSTGRES_URL, 5432)
    url = await create_postgres_database(POSTGRES_URL)
    await db.migrate(url)
    yield url
    await drop_postgres_database(POSTGRES_URL, url)


@pytest.fixture(scope="session")
async def sqlite_template(tmp_path_factory):
    path = tmp_path_factory.mktemp("db") / "template.sqlite3"
    await db.migrate(f"sqlite://{path}")
    return path


TABLES = ["personal_data_access", "correction", "rating", "order_event", "outbox", "inbound_message", "orders",
          "invitation", "duty_shift", "staff", "township", "grid", "resident", "department", "idempotency_record",
          "daily_counter", "spent_token"]


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request) -> str:
    return request.param


@pytest.fixture
async def sqlite_url(tmp_path, sqlite_template) -> str:
    path = tmp_path / "sidan.sqlite3"
    shutil.copy(sqlite_template, path)
    return f"sqlite://{path}"


@pytest.fixture
async def postgres_url(postgres_base) -> str:
    await Tortoise.init(config=db.tortoise_config(postgres_base))
    conn = Tortoise.get_connection("default")
    await conn.execute_script(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
    await Tortoise.close_connections()
    return postgres_base


@pytest.fixture
def database_url(backend, request) -> str:
    """A migrated, empty database of the current backend."""
    return request.getfixturevalue("sqlite_url" if backend == "sqlite" else "postgres_url")


@pytest.fixture
async def store(backend):
    if backend == "sqlite":
        yield MemoryStore()
        return
    require_service("Redis", REDIS_URL, 6379)
    redis_store = RedisStore(REDIS_URL, prefix="sidan-test:")
    await redis_store._redis.flushdb()
    yield redis_store
    await redis_store.close()


@pytest.fixture
def settings(database_url, backend):
    return make_settings(database_url, REDIS_URL if backend == "postgres" else "")


@pytest.fixture
async def orm(database_url):
    """Tortoise initialised on the test database for the test's duration."""
    await db.init_db(database_url)
    yield
    await db.close_db()


@pytest.fixture
def fake_classifier() -> FakeClassifier:
    return FakeClassifier()


@pytest.fixture(scope="session")
def quick_model(tmp_path_factory):
    """The routing model (with its not-a-request screen) trained from corpus/ once per session, as
    `sidan classify train --quick` does: the full settings search takes a minute; the quick model routes and screens
    the same way for the plain texts the tests send."""
    from classifiers.cli import main

    path = tmp_path_factory.mktemp("model") / "router.pkl"
    assert main(["train", "--quick", "--model", str(path)]) == 0
    return path


@pytest.fixture(scope="session")
def trained_router(quick_model):
    from classifiers import Router

    return Router.load(quick_model)
