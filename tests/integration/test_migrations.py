"""The models and the migrations agree, on SQLite and PostgreSQL: no pending change, and the schema the
migrations build is the schema Tortoise would generate from the models (same tables, columns, nullability)."""
from __future__ import annotations

from tortoise import Tortoise

from orders import db
from tests.support import POSTGRES_URL, create_postgres_database, drop_postgres_database


async def _columns(url: str) -> dict[str, set[tuple[str, bool]]]:
    await db.init_db(url)
    conn = Tortoise.get_connection("default")
    try:
        if db.is_postgres(url):
            rows = await conn.execute_query_dict(
                "SELECT table_name, column_name, is_nullable FROM information_schema.columns "
                "WHERE table_schema = 'public' AND table_name <> 'tortoise_migrations'")
            result: dict[str, set[tuple[str, bool]]] = {}
            for row in rows:
                result.setdefault(row["table_name"], set()).add((row["column_name"], row["is_nullable"] == "YES"))
            return result
        tables = await conn.execute_query_dict(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' "
            "AND name <> 'tortoise_migrations'")
        result = {}
        for table in tables:
            info = await conn.execute_query_dict(f'PRAGMA table_info("{table["name"]}")')
            result[table["name"]] = {(col["name"], not col["notnull"] and not col["pk"]) for col in info}
        return result
    finally:
        await db.close_db()




async def test_no_model_change_lacks_a_migration(database_url):
    assert await db.pending_model_changes(database_url) == []


async def test_migrated_schema_equals_the_models_schema(database_url, backend, tmp_path):
    migrated = await _columns(database_url)
    generated_url = f"sqlite://{tmp_path}/generated.sqlite3"
    if backend == "postgres":
        generated_url = await create_postgres_database(POSTGRES_URL)
    try:
        await db.init_db(generated_url)
        await Tortoise.generate_schemas()
        await db.close_db()
        generated = await _columns(generated_url)
    finally:
        if backend == "postgres":
            await drop_postgres_database(POSTGRES_URL, generated_url)
    assert migrated.keys() == generated.keys()
    for table in generated:
        assert migrated[table] == generated[table], table


async def test_the_urgent_flag_is_added_to_a_database_with_orders_none_of_them_flagged(backend, request, tmp_path):
    from tortoise.migrations.api.migrate import migrate as tortoise_migrate

    if backend == "sqlite":
        url = f"sqlite://{tmp_path / 'before-0010.sqlite3'}"
    else:
        request.getfixturevalue("postgres_base")  # PostgreSQL answers (mandatory in CI)
        url = await create_postgres_database(POSTGRES_URL)
    try:
        await tortoise_migrate(config=db.tortoise_config(url), target=f"{db.APP_LABEL}.0008_privacy")
        conn = Tortoise.get_connection("default")
        await conn.execute_query(
            "INSERT INTO orders (number, text, normalized_text, photos, urgency, state, submitted_at, updated_at, "
            "version, auto_dispatched, routing_corrected, escalation_level, overdue, reopen_count) VALUES "
            "('YK20260101-0001', '路灯坏了', '路灯坏了', '[]', '操心事', 'submitted', '2026-01-01 00:00:00+00:00', "
            "'2026-01-01 00:00:00+00:00', 0, false, false, 0, false, 0)")
        await db.close_db()
        assert await db.migrate(url) == ["sidan.0010_urgent_unnotified"]
        await db.init_db(url)
        rows = await Tortoise.get_connection("default").execute_query_dict("SELECT urgent_unnotified FROM orders")
        assert [bool(row["urgent_unnotified"]) for row in rows] == [False]
    finally:
        await db.close_db()
        if backend == "postgres":
            await drop_postgres_database(POSTGRES_URL, url)


async def test_migrate_twice_applies_nothing_the_second_time(database_url):
    assert await db.migrate(database_url) == []
