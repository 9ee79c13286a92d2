"""SQLite: SQLite's online backup API, both ways.

Backing up copies the database as it stood at one moment while the server goes on writing (in WAL mode a reader
does not block writers). Restoring runs the same API the other way, into the configured file: SQLite writes the
pages under its own lock, so the file is never half old, half new, and a stale -wal file cannot be replayed over
it as it could after a plain file copy.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

from api.backup.manifest import MIGRATIONS_TABLE, BackupError, DatabaseState

DATABASE_FILE = "database.sqlite3"
LOCK_TIMEOUT_SECONDS = 30
STOP_THE_SERVER = "请先停止 sidan serve 和 sidan worker(SQLite 恢复时不能有进程在用这个数据库文件),恢复后再启动"


def database_path(url: str) -> Path:
    path = url[len("sqlite://"):].split("?", 1)[0]
    if not path or path == ":memory:":
        raise BackupError(f"数据库 {url} 在内存中,没有文件可以备份或恢复")
    return Path(path).expanduser()


def describe(url: str) -> str:
    return str(database_path(url).resolve())


def read_state(conn: sqlite3.Connection) -> DatabaseState:
    tables = [row[0] for row in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    counts = {name: conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in tables}
    migrations = []
    if MIGRATIONS_TABLE in counts:
        migrations = [row[0] for row in conn.execute(
            f"SELECT name FROM {MIGRATIONS_TABLE} WHERE app = 'sidan' ORDER BY id")]
    return DatabaseState(counts, migrations)


def ready_to_dump(url: str) -> None:
    path = database_path(url)
    if not path.is_file():
        raise BackupError(f"数据库文件 {path.resolve()} 不存在(路径对吗?新装的先运行 sidan migrate)")


def ready_to_restore() -> None:
    """The sqlite3 module is all a restore needs."""


async def dump(url: str, target: Path) -> DatabaseState:
    ready_to_dump(url)
    source_path = database_path(url)
    source = sqlite3.connect(source_path, timeout=LOCK_TIMEOUT_SECONDS)
    copy = sqlite3.connect(target)
    try:
        try:
            source.backup(copy)  # all pages in one step: one read snapshot, whatever the writers do meanwhile
        except sqlite3.Error as exc:
            raise BackupError(f"备份 SQLite 数据库 {source_path} 失败:{exc}") from None
        copy.execute("PRAGMA journal_mode = DELETE")  # the backup is one self-contained file, no -wal beside it
        checked = copy.execute("PRAGMA quick_check").fetchone()[0]
        if checked != "ok":
            raise BackupError(f"数据库 {source_path} 的完整性检查未通过({checked}):先修复数据库再备份")
        return read_state(copy)
    finally:
        copy.close()
        source.close()


async def inspect(url: str) -> DatabaseState | None:
    """What the configured database holds now; None when its file does not exist yet."""
    path = database_path(url)
    if not path.is_file():
        return None
    conn = sqlite3.connect(path, timeout=LOCK_TIMEOUT_SECONDS)
    try:
        return read_state(conn)
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} 打不开({exc}):它不是 SQLite 数据库?") from None
    finally:
        conn.close()


async def restore(backup_file: Path, url: str, current: DatabaseState | None, backup_tables: set[str]) -> None:
    # Page by page: the backup replaces the whole file, tables it does not know included.
    path = database_path(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(f"file:{backup_file}?mode=ro", uri=True)
    target = sqlite3.connect(path, timeout=LOCK_TIMEOUT_SECONDS)
    try:
        source.backup(target)
    except sqlite3.OperationalError as exc:
        raise BackupError(f"写不进 {path}({exc}):{STOP_THE_SERVER}") from None
    finally:
        target.close()
        source.close()
