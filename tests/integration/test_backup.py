"""`sidan backup DIR` and `sidan restore DIR` through the command line, on SQLite and on PostgreSQL.

One database per backend gets the demo township and 25 orders with their history, and local media files; it is
backed up once per module (the `source` fixture) and each test restores that backup somewhere new. The
PostgreSQL databases are made here and dropped at the end."""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from tortoise import Tortoise
from tortoise.migrations.api.migrate import migrate as tortoise_migrate

from api.backup.manifest import known_migrations
from api.cli import main
from api.demo.township import load_demo_data
from orders import db
from orders.services import OrderService
from tests.conftest import TABLES, require_service
from tests.support import (
    POSTGRES_URL, FakeClassifier, create_postgres_database, drop_postgres_database, make_settings, run_sidan,
)

MEDIA = {"2026/11/20/photo-路灯.jpg": os.urandom(3000), "voice/report-1.amr": b"#!AMR\n" + os.urandom(500)}


def sidan(cwd: Path, database_url: str, *args: str, path: str | None = None) -> subprocess.CompletedProcess:
    return run_sidan(database_url, *args, cwd=cwd, path=path, timeout=300)


class Databases:
    """Migrated (or empty) databases of one backend, made on demand; the PostgreSQL ones are dropped at the end."""

    def __init__(self, kind: str, folder: Path) -> None:
        self.kind, self.folder, self.made = kind, folder, []

    async def new(self, migration: str | None = None, migrated: bool = True) -> str:
        if self.kind == "sqlite":
            url = f"sqlite://{self.folder}/db-{len(self.made)}.sqlite3"
        else:
            url = await create_postgres_database(POSTGRES_URL)
        self.made.append(url)
        if migration:
            db._forget_cached_queries()
            await tortoise_migrate(config=db.tortoise_config(url), target=f"sidan.{migration}")
            await Tortoise.close_connections()
        elif migrated:
            await db.migrate(url)
        return url

    async def drop_all(self) -> None:
        if self.kind == "postgres":
            for url in self.made:
                await drop_postgres_database(POSTGRES_URL, url)


async def row_counts(url: str) -> dict[str, int]:
    await db.init_db(url)
    try:
        conn = Tortoise.get_connection("default")
        return {table: (await conn.execute_query_dict(f'SELECT count(*) AS n FROM "{table}"'))[0]["n"]
                for table in [*TABLES, "tortoise_migrations"]}
    finally:
        await db.close_db()


async def query(url: str, sql: str) -> list[dict]:
    await db.init_db(url)
    try:
        return await Tortoise.get_connection("default").execute_query_dict(sql)
    finally:
        await db.close_db()


async def busiest_order(url: str) -> str:
    rows = await query(url, "SELECT o.number FROM orders o JOIN order_event e ON e.order_id = o.id "
                            "GROUP BY o.number ORDER BY count(*) DESC, o.number LIMIT 1")
    return rows[0]["number"]


async def events_of(url: str, number: str) -> list[tuple]:
    rows = await query(url, "SELECT e.action, e.from_state, e.to_state, e.actor_role, e.actor_name, e.reason, e.at "
                            f"FROM order_event e JOIN orders o ON o.id = e.order_id WHERE o.number = '{number}' "
                            "ORDER BY e.id")
    return [tuple(str(value) for value in row.values()) for row in rows]


async def orders_of(url: str) -> list[tuple]:
    rows = await query(url, "SELECT number, state, version, department_id, text FROM orders ORDER BY number")
    return [tuple(row.values()) for row in rows]


def only_backup_in(directory: Path) -> Path:
    [folder] = [path for path in directory.iterdir() if path.name.startswith("sidan-backup-")]
    return folder


@dataclass
class Source:
    url: str
    cwd: Path
    backup: Path
    output: str

    def copy_of_backup(self, where: Path) -> Path:
        return Path(shutil.copytree(self.backup, where / self.backup.name))


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def kind(request) -> str:
    if request.param == "postgres":
        require_service("PostgreSQL", POSTGRES_URL, 5432)
    return request.param


@pytest.fixture(scope="module")
async def databases(kind, tmp_path_factory):
    made = Databases(kind, tmp_path_factory.mktemp(f"databases-{kind}"))
    yield made
    await made.drop_all()


@pytest.fixture(scope="module")
async def source(kind, databases, tmp_path_factory) -> Source:
    cwd = tmp_path_factory.mktemp(f"source-{kind}")
    url = await databases.new()
    loaded = sidan(cwd, url, "demo-data", "--orders", "25")
    assert loaded.returncode == 0, loaded.stderr
    for name, content in MEDIA.items():
        (cwd / "var/media" / name).parent.mkdir(parents=True, exist_ok=True)
        (cwd / "var/media" / name).write_bytes(content)
    result = sidan(cwd, url, "backup", str(cwd / "backups"))
    assert result.returncode == 0, result.stderr
    return Source(url, cwd, only_backup_in(cwd / "backups"), result.stdout)


async def test_the_backup_folder_holds_the_database_the_media_and_a_manifest_that_proves_them(source, kind):
    manifest = json.loads((source.backup / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["backend"] == kind and manifest["sidan_version"] == "0.1.0"
    assert manifest["migration"] == known_migrations()[-1] and manifest["migrations"] == known_migrations()
    assert manifest["tables"] == await row_counts(source.url)
    assert manifest["tables"]["orders"] == 25
    database_file = {"sqlite": "database.sqlite3", "postgres": "database.pgdump"}[kind]
    assert set(manifest["files"]) == {database_file} | {f"media/{name}" for name in MEDIA}
    for name, entry in manifest["files"].items():
        content = (source.backup / name).read_bytes()
        assert entry == {"sha256": hashlib.sha256(content).hexdigest(), "bytes": len(content)}
    for name, content in MEDIA.items():
        assert (source.backup / "media" / name).read_bytes() == content
    assert manifest["media"]["store"] == "local" and manifest["media"]["files"] == len(MEDIA)
    assert stat.S_IMODE(source.backup.stat().st_mode) == 0o700  # residents' phone numbers inside
    assert "备份完成" in source.output and "工单 25 行" in source.output
    assert not [path for path in source.backup.parent.iterdir() if path.name.endswith(".partial")]


async def test_a_backup_restores_into_an_empty_database_with_every_row_and_event(source, databases, tmp_path):
    target = await databases.new()
    result = sidan(tmp_path, target, "restore", str(source.backup))
    assert result.returncode == 0, result.stderr
    assert "恢复完成" in result.stdout and "行数与备份一致" in result.stdout
    assert await row_counts(target) == await row_counts(source.url)
    number = await busiest_order(source.url)
    events = await events_of(source.url, number)
    assert len(events) >= 4 and await events_of(target, number) == events
    assert await orders_of(target) == await orders_of(source.url)
    for name, content in MEDIA.items():
        assert (tmp_path / "var/media" / name).read_bytes() == content
    # The restored database takes new orders: its id sequences came back with the rows.
    [last] = await query(source.url, "SELECT max(id) AS id FROM orders")
    await db.init_db(target)
    try:
        submission = await OrderService(make_settings(target), FakeClassifier()).submit(
            openid="oAfterRestore", text="恢复后村口的路灯又坏了")
    finally:
        await db.close_db()
    assert submission.order.id > last["id"]


async def test_a_restore_into_a_database_never_migrated_works_too(source, databases, tmp_path):
    target = await databases.new(migrated=False)
    result = sidan(tmp_path, target, "restore", str(source.backup))
    assert result.returncode == 0, result.stderr
    assert await row_counts(target) == await row_counts(source.url)


async def test_a_corrupted_backup_is_refused_and_the_database_is_untouched(source, databases, tmp_path):
    damaged = source.copy_of_backup(tmp_path / "copy")
    database_file = next(path for path in damaged.iterdir() if path.name.startswith("database."))
    content = bytearray(database_file.read_bytes())
    content[len(content) // 2] ^= 0xFF
    database_file.write_bytes(bytes(content))
    target = await databases.new()
    before = await row_counts(target)
    for args in (["restore", str(damaged)], ["restore", "--force", str(damaged)], ["restore", "--check", str(damaged)]):
        result = sidan(tmp_path, target, *args)
        assert result.returncode == 2, result.stdout
        assert "已损坏" in result.stderr and database_file.name in result.stderr and "校验和" in result.stderr
        assert "Traceback" not in result.stderr
    assert await row_counts(target) == before
    assert not (tmp_path / "var/media").exists()


async def test_a_database_holding_orders_is_not_replaced_without_force(source, databases, tmp_path):
    target = await databases.new()
    assert sidan(tmp_path, target, "demo-data", "--orders", "5", "--seed", "7").returncode == 0
    before_counts, before_orders = await row_counts(target), await orders_of(target)
    refused = sidan(tmp_path, target, "restore", str(source.backup))
    assert refused.returncode == 2
    assert "已有数据" in refused.stderr and "工单 5 行" in refused.stderr and "--force" in refused.stderr
    assert "丢失" in refused.stderr
    assert await row_counts(target) == before_counts and await orders_of(target) == before_orders
    assert not (tmp_path / "var/media").exists()
    forced = sidan(tmp_path, target, "restore", "--force", str(source.backup))
    assert forced.returncode == 0, forced.stderr
    assert await orders_of(target) == await orders_of(source.url)


async def test_check_verifies_a_backup_without_touching_anything(source, databases, tmp_path):
    target = await databases.new()
    result = sidan(tmp_path, target, "restore", "--check", str(source.backup))
    assert result.returncode == 0, result.stderr
    assert "备份完好" in result.stdout and "工单 25 张" in result.stdout
    assert (await row_counts(target))["orders"] == 0 and not (tmp_path / "var/media").exists()


async def test_restore_names_the_backups_of_a_directory_instead_of_guessing(source, tmp_path):
    result = sidan(tmp_path, source.url, "restore", str(source.backup.parent))
    assert result.returncode == 2 and source.backup.name in result.stderr and "请指定其中一份" in result.stderr
    missing = sidan(tmp_path, source.url, "restore", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "不存在" in missing.stderr


@pytest.mark.parametrize("kind", ["sqlite"], indirect=True)
async def test_a_backup_from_a_newer_sidan_is_refused(source, databases, tmp_path):
    newer = source.copy_of_backup(tmp_path / "copy")
    manifest = json.loads((newer / "manifest.json").read_text(encoding="utf-8"))
    manifest["migrations"].append("0099_from_the_future")
    manifest["migration"] = "0099_from_the_future"
    (newer / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    target = await databases.new()
    result = sidan(tmp_path, target, "restore", str(newer))
    assert result.returncode == 2 and "0099_from_the_future" in result.stderr and "升级" in result.stderr
    assert (await row_counts(target))["orders"] == 0


@pytest.mark.parametrize("kind", ["sqlite"], indirect=True)
async def test_a_backup_that_cannot_start_says_why_and_leaves_no_folder(source, tmp_path):
    missing = sidan(tmp_path, f"sqlite://{tmp_path}/no-such.sqlite3", "backup", str(tmp_path / "backups"))
    assert missing.returncode == 2 and "no-such.sqlite3" in missing.stderr and "不存在" in missing.stderr
    assert not (tmp_path / "backups").exists() and not (tmp_path / "no-such.sqlite3").exists()
    (tmp_path / "a-file").write_text("not a folder")
    blocked = sidan(tmp_path, source.url, "backup", str(tmp_path / "a-file"))
    assert blocked.returncode == 2 and "a-file" in blocked.stderr and "Traceback" not in blocked.stderr
    inside_media = sidan(source.cwd, source.url, "backup", str(source.cwd / "var/media/backups"))
    assert inside_media.returncode == 2 and "媒体目录" in inside_media.stderr
    assert not (source.cwd / "var/media/backups").exists()


@pytest.mark.parametrize("kind", ["sqlite"], indirect=True)
async def test_a_damaged_media_file_is_refused_too(source, databases, tmp_path):
    damaged = source.copy_of_backup(tmp_path / "copy")
    (damaged / "media/voice/report-1.amr").write_bytes(b"#!AMR\n" + b"\0" * 500)
    result = sidan(tmp_path, await databases.new(), "restore", str(damaged))
    assert result.returncode == 2 and "media/voice/report-1.amr" in result.stderr


@pytest.mark.parametrize("kind", ["sqlite"], indirect=True)
async def test_a_backup_of_another_backend_is_refused(source, tmp_path):
    require_service("PostgreSQL", POSTGRES_URL, 5432)
    target = await create_postgres_database(POSTGRES_URL)
    try:
        result = sidan(tmp_path, target, "restore", str(source.backup))
    finally:
        await drop_postgres_database(POSTGRES_URL, target)
    assert result.returncode == 2 and "SQLite" in result.stderr and "PostgreSQL" in result.stderr


@pytest.mark.parametrize("kind", ["sqlite", "postgres"], indirect=True)
async def test_a_backup_at_an_older_migration_level_restores_and_says_to_migrate(kind, databases, tmp_path):
    older = await databases.new(migration="0003_outbox_claim")
    made = sidan(tmp_path, older, "backup", str(tmp_path / "backups"))
    assert made.returncode == 0, made.stderr
    target = await databases.new(migrated=False)
    restored = sidan(tmp_path, target, "restore", str(only_backup_in(tmp_path / "backups")))
    assert restored.returncode == 0, restored.stderr
    assert "0003_outbox_claim" in restored.stdout and "0004_rating_at_index" in restored.stdout
    assert "sidan migrate" in restored.stdout
    migrated = sidan(tmp_path, target, "migrate")
    assert migrated.returncode == 0 and "0004_rating_at_index" in migrated.stdout, migrated.stderr


@pytest.mark.parametrize("kind", ["postgres"], indirect=True)
async def test_without_pg_dump_the_backup_names_the_package_and_writes_nothing(source, tmp_path):
    no_tools = tmp_path / "bin"
    no_tools.mkdir()
    result = sidan(tmp_path, source.url, "backup", str(tmp_path / "backups"), path=str(no_tools))
    assert result.returncode == 2 and "pg_dump" in result.stderr and "postgresql-client" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "backups").exists()


@pytest.mark.parametrize("kind", ["postgres"], indirect=True)
async def test_without_pg_restore_the_restore_names_the_package_and_changes_nothing(source, databases, tmp_path):
    target = await databases.new()
    no_tools = tmp_path / "bin"
    no_tools.mkdir()
    result = sidan(tmp_path, target, "restore", str(source.backup), path=str(no_tools))
    assert result.returncode == 2 and "pg_restore" in result.stderr and "postgresql-client" in result.stderr
    assert (await row_counts(target))["orders"] == 0 and not (tmp_path / "var/media").exists()


@pytest.mark.parametrize("kind", ["postgres"], indirect=True)
async def test_the_password_reaches_pg_dump_by_environment_never_on_its_command_line(source, tmp_path):
    spy = tmp_path / "bin"
    spy.mkdir()
    real = shutil.which("pg_dump")
    (spy / "pg_dump").write_text(f'#!/bin/sh\necho "$*" > {tmp_path}/argv\necho "$PGPASSWORD" > {tmp_path}/env\n'
                                 f'exec {real} "$@"\n')
    (spy / "pg_dump").chmod(0o755)
    with_password = source.url.replace("postgres@", "postgres:s3cret-pw@", 1)
    result = sidan(tmp_path, with_password, "backup", str(tmp_path / "backups"),
                   path=f"{spy}{os.pathsep}{os.environ['PATH']}")
    assert result.returncode == 0, result.stderr
    assert "s3cret-pw" not in (tmp_path / "argv").read_text() and "--snapshot=" in (tmp_path / "argv").read_text()
    assert (tmp_path / "env").read_text().strip() == "s3cret-pw"
    manifest = (only_backup_in(tmp_path / "backups") / "manifest.json").read_text(encoding="utf-8")
    assert "s3cret-pw" not in manifest and "s3cret-pw" not in result.stdout


@pytest.mark.parametrize("kind", ["sqlite"], indirect=True)
async def test_unchanged_media_are_linked_to_the_previous_backup_and_keep_prunes_old_ones(databases, tmp_path):
    url = await databases.new()
    media = tmp_path / "var/media"
    media.mkdir(parents=True)
    (media / "old.jpg").write_bytes(b"old photo")
    (media / "changed.jpg").write_bytes(b"first version")
    backups = tmp_path / "backups"
    assert sidan(tmp_path, url, "backup", str(backups)).returncode == 0
    first = only_backup_in(backups)
    (media / "changed.jpg").write_bytes(b"second version")
    (media / "new.jpg").write_bytes(b"new photo")
    second_run = sidan(tmp_path, url, "backup", str(backups))
    assert second_run.returncode == 0 and "其中 1 个与上一份备份相同" in second_run.stdout
    second = next(path for path in backups.iterdir() if path.name.startswith("sidan-backup-") and path != first)
    assert (second / "media/old.jpg").stat().st_ino == (first / "media/old.jpg").stat().st_ino
    assert (second / "media/changed.jpg").stat().st_ino != (first / "media/changed.jpg").stat().st_ino
    assert (second / "media/changed.jpg").read_bytes() == b"second version"
    third_run = sidan(tmp_path, url, "backup", str(backups), "--keep", "1")
    assert third_run.returncode == 0 and "已删除旧备份" in third_run.stdout
    newest = only_backup_in(backups)
    assert newest not in (first, second)
    checked = sidan(tmp_path, url, "restore", "--check", str(newest))
    assert checked.returncode == 0, checked.stderr
    assert (newest / "media/old.jpg").read_bytes() == b"old photo"


@pytest.mark.parametrize("kind", ["sqlite", "postgres"], indirect=True)
async def test_a_backup_taken_while_orders_arrive_is_consistent(kind, databases, tmp_path, monkeypatch):
    url = await databases.new()
    monkeypatch.setenv("SIDAN_DATABASE_URL", url)
    monkeypatch.chdir(tmp_path)
    await db.init_db(url)
    await load_demo_data()
    service = OrderService(make_settings(url), FakeClassifier())
    stop = asyncio.Event()

    async def keep_submitting() -> int:
        written = 0
        while not stop.is_set():
            await service.submit(openid=f"oWriter{written % 5}", text=f"村口的路灯坏了(第 {written} 次)")
            written += 1
        return written

    writer = asyncio.create_task(keep_submitting())
    try:
        while await orders_now() < 5:
            await asyncio.sleep(0.05)
        before = await orders_now()
        for _ in range(3):
            # in a thread of its own, as a cron job would run beside the server
            assert await asyncio.to_thread(main, ["backup", str(tmp_path / "backups")]) == 0
        after = await orders_now()
    finally:
        stop.set()
        await writer
        await db.close_db()
    assert after > before  # orders kept arriving while the backups ran
    folders = sorted(path for path in (tmp_path / "backups").iterdir() if path.name.startswith("sidan-backup-"))
    assert len(folders) == 3
    target = await databases.new()
    for folder in folders:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        restored = sidan(tmp_path, target, "restore", "--force", str(folder))
        assert restored.returncode == 0, restored.stderr
        counts = await row_counts(target)
        assert counts == manifest["tables"] and before <= counts["orders"] <= after
        # every order came with its submit event and its number in one transaction: a torn copy would split them
        [torn] = await query(target, "SELECT count(*) AS n FROM orders o WHERE (SELECT count(*) FROM order_event e "
                                     "WHERE e.order_id = o.id AND e.action = 'submit') <> 1")
        [numbered] = await query(target, "SELECT coalesce(sum(value), 0) AS n FROM daily_counter")
        assert torn["n"] == 0 and numbered["n"] == counts["orders"]


async def orders_now() -> int:
    from orders import models

    return await models.Order.all().count()
