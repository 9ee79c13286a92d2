"""The models and the migrations agree, on SQLite and PostgreSQL: no pending change, and the schema the
migrations build is the schema Tortoise would generate from the models (same tables, columns, nullability)."""
from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

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


@contextlib.asynccontextmanager
async def database_at(level: str, backend: str, request, tmp_path) -> AsyncIterator[tuple[str, Any]]:
    """A database migrated up to `level` only (an older sidan's), on the test's backend: its URL and a connection
    to write that sidan's rows with; dropped afterwards (PostgreSQL)."""
    from tortoise.migrations.api.migrate import migrate as tortoise_migrate

    if backend == "sqlite":
        url = f"sqlite://{tmp_path / f'at-{level}.sqlite3'}"
    else:
        request.getfixturevalue("postgres_base")  # PostgreSQL answers (mandatory in CI)
        url = await create_postgres_database(POSTGRES_URL)
    try:
        await tortoise_migrate(config=db.tortoise_config(url), target=f"{db.APP_LABEL}.{level}")
        yield url, Tortoise.get_connection("default")
    finally:
        await db.close_db()
        if backend == "postgres":
            await drop_postgres_database(POSTGRES_URL, url)


async def _rows(url: str, sql: str) -> list[dict[str, Any]]:
    await db.init_db(url)
    try:
        return await Tortoise.get_connection("default").execute_query_dict(sql)
    finally:
        await db.close_db()


async def test_the_township_columns_are_added_to_a_database_with_grids_and_staff(backend, request, tmp_path):
    """0007 adds grid.active and staff.from_file (NOT NULL): a database default fills the rows already there, which
    PostgreSQL would otherwise refuse (SQLite too): grids stay in use, staff count as added by hand."""
    async with database_at("0006_spent_token", backend, request, tmp_path) as (url, conn):
        await conn.execute_query("INSERT INTO department (code, name, duties, active) VALUES "
                                 "('jianshe', '村镇建设办', '[]', true)")
        await conn.execute_query("INSERT INTO grid (code, name, village) VALUES ('G-01', '楼坝村一网格', '楼坝村'), "
                                 "('G-02', '楼坝村二网格', '楼坝村')")
        await conn.execute_query(
            "INSERT INTO staff (openid, name, role, department_id, grid_id, active, created_at) VALUES "
            "('o-grid', '张网格', 'grid_worker', NULL, 1, true, '2026-01-01 00:00:00+00:00'), "
            "(NULL, '李建设', 'dept_staff', 1, NULL, false, '2026-01-01 00:00:00+00:00')")
        await db.close_db()
        applied = await db.migrate(url)
        assert applied[0] == "sidan.0007_township" and applied == sorted(applied)  # and every later one
        grids = await _rows(url, "SELECT code, active, radius_m FROM grid ORDER BY id")
        assert [(row["code"], bool(row["active"]), row["radius_m"]) for row in grids] == [
            ("G-01", True, None), ("G-02", True, None)]
        staff = await _rows(url, "SELECT name, from_file, active, phone FROM staff ORDER BY id")
        assert [(row["name"], bool(row["from_file"]), bool(row["active"]), row["phone"]) for row in staff] == [
            ("张网格", False, True, None), ("李建设", False, False, None)]


async def test_the_urgent_flag_is_added_to_a_database_with_orders_none_of_them_flagged(backend, request, tmp_path):
    async with database_at("0009_media", backend, request, tmp_path) as (url, conn):
        await conn.execute_query(
            "INSERT INTO orders (number, text, normalized_text, photos, urgency, state, submitted_at, updated_at, "
            "version, auto_dispatched, routing_corrected, escalation_level, overdue, reopen_count) VALUES "
            "('YK20260101-0001', '路灯坏了', '路灯坏了', '[]', '操心事', 'submitted', '2026-01-01 00:00:00+00:00', "
            "'2026-01-01 00:00:00+00:00', 0, false, false, 0, false, 0)")
        await db.close_db()
        assert (await db.migrate(url))[0] == "sidan.0010_urgent_unnotified"
        rows = await _rows(url, "SELECT urgent_unnotified FROM orders")
        assert [bool(row["urgent_unnotified"]) for row in rows] == [False]


async def test_the_resident_link_columns_leave_the_residents_there_as_they_were(backend, request, tmp_path):
    """0012: residents already there keep their rows and unionids, nothing linked or merged, no lookup queued."""
    async with database_at("0011_staff_oa_openid", backend, request, tmp_path) as (url, conn):
        await conn.execute_query(
            "INSERT INTO resident (openid, unionid, subscribed, created_at) VALUES "
            "('o-oa', 'u-1', true, '2026-01-01 00:00:00+00:00'), ('o-mini', NULL, true, '2026-01-01 00:00:00+00:00')")
        await db.close_db()
        assert (await db.migrate(url))[0] == "sidan.0012_resident_link"
        rows = await _rows(url, "SELECT openid, unionid, miniapp_openid, merged_into_id, contact_phone FROM resident "
                                "ORDER BY id")
        assert [tuple(row.values()) for row in rows] == [("o-oa", "u-1", None, None, None),
                                                         ("o-mini", None, None, None, None)]
        assert await _rows(url, "SELECT id FROM unionid_lookup") == []
        assert await _rows(url, "SELECT id FROM resident_link") == []


async def test_the_hotspot_tables_are_added_to_a_database_with_orders_none_of_them_alerted(backend, request, tmp_path):
    async with database_at("0012_resident_link", backend, request, tmp_path) as (url, conn):
        await conn.execute_query(
            "INSERT INTO orders (number, text, normalized_text, photos, urgency, state, submitted_at, updated_at, "
            "version, auto_dispatched, routing_corrected, escalation_level, overdue, reopen_count, urgent_unnotified) "
            "VALUES ('YK20260101-0001', '路灯坏了', '路灯坏了', '[]', '操心事', 'submitted', "
            "'2026-01-01 00:00:00+00:00', '2026-01-01 00:00:00+00:00', 0, false, false, 0, false, 0, false)")
        await db.close_db()
        assert "sidan.0013_hotspot_alerts" in await db.migrate(url)
        assert await _rows(url, "SELECT * FROM hotspot_alert_order") == []
        assert await _rows(url, "SELECT * FROM hotspot_alert") == []
        assert [row["number"] for row in await _rows(url, "SELECT number FROM orders")] == ["YK20260101-0001"]


async def test_the_suggestions_column_is_added_to_a_database_with_orders_left_empty(backend, request, tmp_path):
    async with database_at("0013_hotspot_alerts", backend, request, tmp_path) as (url, conn):
        await conn.execute_query(
            "INSERT INTO orders (number, text, normalized_text, photos, urgency, state, submitted_at, updated_at, "
            "version, auto_dispatched, routing_corrected, escalation_level, overdue, reopen_count, urgent_unnotified, "
            "predicted_category, predicted_department, confidence) VALUES "
            "('YK20260101-0001', '路灯坏了', '路灯坏了', '[]', '操心事', 'submitted', '2026-01-01 00:00:00+00:00', "
            "'2026-01-01 00:00:00+00:00', 0, false, false, 0, false, 0, false, '社会民生', 'jianshe', 0.9)")
        await db.close_db()
        assert "sidan.0014_order_suggestions" in await db.migrate(url)
        rows = await _rows(url, "SELECT number, suggestions FROM orders")
        assert [(row["number"], row["suggestions"]) for row in rows] == [("YK20260101-0001", None)]


async def test_the_merge_columns_are_added_to_a_database_with_orders_none_merged_none_looked_for(backend, request,
                                                                                              tmp_path):
    async with database_at("0015_reference_edits", backend, request, tmp_path) as (url, conn):
        await conn.execute_query(
            "INSERT INTO orders (number, text, normalized_text, photos, urgency, state, submitted_at, updated_at, "
            "version, auto_dispatched, routing_corrected, escalation_level, overdue, reopen_count, urgent_unnotified) "
            "VALUES ('YK20260101-0001', '路灯坏了', '路灯坏了', '[]', '操心事', 'submitted', "
            "'2026-01-01 00:00:00+00:00', '2026-01-01 00:00:00+00:00', 0, false, false, 0, false, 0, false)")
        await db.close_db()
        assert (await db.migrate(url))[0] == "sidan.0016_similar_merge"
        rows = await _rows(url, 'SELECT merged_into_id, merged_at, "similar" FROM orders')
        assert [(row["merged_into_id"], row["merged_at"], row["similar"]) for row in rows] == [(None, None, None)]


async def test_migrate_twice_applies_nothing_the_second_time(database_url):
    assert await db.migrate(database_url) == []
