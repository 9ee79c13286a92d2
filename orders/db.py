"""The database: Tortoise configuration from SIDAN_DATABASE_URL, start/stop, migrations."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from tortoise import Tortoise, connections

APP_LABEL = "sidan"
MODELS_MODULE = "orders.models"
MIGRATIONS_MODULE = "migrations"


def tortoise_url(url: str) -> str:
    """Translate the configured URL into Tortoise's form (and create a SQLite file's folder)."""
    if url.startswith("postgresql://"):
        url = "postgres://" + url[len("postgresql://"):]
    if url.startswith("sqlite://"):
        path = url[len("sqlite://"):].split("?", 1)[0]
        if path and path != ":memory:":
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
    return url


def apps_config() -> dict[str, Any]:
    return {APP_LABEL: {"models": [MODELS_MODULE], "default_connection": "default", "migrations": MIGRATIONS_MODULE}}


def tortoise_config(url: str) -> dict[str, Any]:
    return {
        "connections": {"default": tortoise_url(url)},
        "apps": apps_config(),
        "use_tz": True,
        "timezone": "UTC",
    }


def is_postgres(url: str) -> bool:
    return url.startswith(("postgres://", "postgresql://"))


def _forget_cached_queries() -> None:
    """Tortoise caches SQL per connection *name*; a process that switches backends (the tests do) must forget it."""
    from tortoise.backends.base.executor import EXECUTOR_CACHE

    EXECUTOR_CACHE.clear()


async def init_db(url: str) -> None:
    _forget_cached_queries()
    # Sanic starts the database in a listener; request tasks do not inherit that task's context, so the
    # connections must be reachable process-wide (Tortoise 1.x keeps them per context otherwise).
    await Tortoise.init(config=tortoise_config(url), _enable_global_fallback=True)


async def close_db() -> None:
    await Tortoise.close_connections()


async def migrate(url: str) -> list[str]:
    """Apply pending migrations; returns the names applied."""
    from tortoise.migrations.api.migrate import migrate as tortoise_migrate

    applied: list[str] = []

    def progress(event: str, app_label: str, name: str) -> None:
        if event == "apply_done":
            applied.append(f"{app_label}.{name}")

    _forget_cached_queries()
    await tortoise_migrate(config=tortoise_config(url), progress=progress)
    await Tortoise.close_connections()
    return applied


async def pending_model_changes(url: str) -> list[str]:
    """Model changes that no migration covers yet (empty when models and migrations agree)."""
    from tortoise.migrations.autodetector import MigrationAutodetector

    config = tortoise_config(url)
    _forget_cached_queries()
    await Tortoise.init(config=config)
    try:
        detector = MigrationAutodetector(Tortoise.apps, config["apps"])
        writers = await detector.changes()
        return [f"{writer.app_label}.{writer.name}: {[type(op).__name__ for op in writer.operations]}" for writer in writers]
    finally:
        await Tortoise.close_connections()


async def pending_migrations() -> list[str]:
    """Migrations not yet applied to the open database, in the order `sidan migrate` would apply them."""
    from tortoise.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connections.get("default"), apps_config())
    return [step.migration.name for step in await executor.plan() if not step.backward]


async def pending_migrations_at(url: str) -> list[str]:
    """pending_migrations() of the database at `url` (a command's check before it starts)."""
    await init_db(url)
    try:
        await ping()  # a database that does not answer raises here, not "every migration pending"
        return await pending_migrations()
    finally:
        await close_db()


async def ping() -> bool:
    conn = connections.get("default")
    await conn.execute_query("SELECT 1")
    return True


async def make_migrations(url: str = "sqlite://:memory:") -> list[str]:
    """Write migration files for model changes (developer tool: `sidan makemigrations`)."""
    from tortoise.migrations.autodetector import MigrationAutodetector

    config = tortoise_config(url)
    _forget_cached_queries()
    await Tortoise.init(config=config)
    try:
        writers = await MigrationAutodetector(Tortoise.apps, config["apps"]).changes()
        return [str(writer.write()) for writer in writers]
    finally:
        await Tortoise.close_connections()
