"""Backends: every integration test runs on the embedded default (SQLite + in-process store) and, when
they answer, on PostgreSQL + Redis. With CI=true the real services are mandatory."""
from __future__ import annotations

import shutil
import uuid
from urllib.parse import urlparse

import pytest
from tortoise import Tortoise

from orders import db
from orders.store import MemoryStore, RedisStore
from tests.fake_wechat import FakeWeChat
from tests.support import (
    IN_CI, MEDIA_ROOT, POSTGRES_URL, REDIS_URL, FakeClassifier, create_postgres_database, drop_postgres_database,
    free_port, reachable, make_settings,
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


@pytest.fixture(scope="session", autouse=True)
def media_root():
    """The media files written by this run's tests, gone with it."""
    yield MEDIA_ROOT
    shutil.rmtree(MEDIA_ROOT, ignore_errors=True)


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


TABLES = ["reference_edit", "hotspot_alert_order", "hotspot_alert", "resident_link", "unionid_lookup",
          "personal_data_access", "correction", "rating", "order_event", "outbox", "inbound_message", "media", "orders",
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
def fake_wechat() -> FakeWeChat:
    """The fake WeChat API on loopback (tests/fake_wechat.py), for the test's duration."""
    fake = FakeWeChat().start()
    yield fake
    fake.stop()


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


def _no_s3(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"CI=true: {reason} — the S3 media store is tested against moto's server in CI", pytrace=False)
    pytest.skip(f"{reason}: the S3 media store is not tested on this machine")


@pytest.fixture(scope="session")
def moto_endpoint():
    """A real S3-compatible server (moto's server mode) on a loopback port, for this test session."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        _no_s3(f"moto[server] is not installed ({exc})")
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    try:
        server.start()
    except Exception as exc:  # noqa: BLE001 - whatever keeps it from starting is the reason given
        _no_s3(f"moto's S3 server did not start ({type(exc).__name__}: {exc})")
    if not reachable("127.0.0.1", port, timeout=5):
        _no_s3(f"moto's S3 server does not answer on 127.0.0.1:{port}")
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_media_url(moto_endpoint) -> str:
    """SIDAN_MEDIA_URL of an empty bucket of its own on that server."""
    import boto3

    bucket = f"sidan-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1", aws_access_key_id="test",
                          aws_secret_access_key="test")
    client.create_bucket(Bucket=bucket)
    client.close()
    return f"s3://test:test@{bucket}/evidence?endpoint={moto_endpoint}&region=us-east-1"


@pytest.fixture(params=["local", "s3"])
def media_url(request, tmp_path) -> str:
    """Each media store backend: a folder, and a bucket on the S3-compatible server."""
    return str(tmp_path / "media") if request.param == "local" else request.getfixturevalue("s3_media_url")
