"""PostgreSQL: pg_dump and pg_restore, found on PATH.

The dump is taken inside a snapshot this module exports (pg_dump --snapshot), and the manifest's row counts are
read in the same snapshot: they describe exactly the rows in the dump, however many orders arrive meanwhile.
The password goes to the tools through PGPASSWORD, never on their command line (where `ps` would show it).
"""
from __future__ import annotations

import asyncio
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from api.backup.manifest import MIGRATIONS_TABLE, BackupError, DatabaseState

DATABASE_FILE = "database.pgdump"
STOP_THE_SERVER = "恢复期间请停止 sidan serve 和 sidan worker,恢复后再启动"
CLIENT_PACKAGE = ("找不到 {tool}:请安装 PostgreSQL 客户端(Debian/Ubuntu: apt-get install postgresql-client;"
                  "CentOS/openEuler: yum install postgresql;版本不低于数据库服务器),或把 {tool} 所在目录加入 PATH")


@dataclass(frozen=True)
class Target:
    """The parts of SIDAN_DATABASE_URL that the PostgreSQL tools and asyncpg need."""

    host: str
    port: int
    user: str
    password: str | None
    database: str

    @classmethod
    def from_url(cls, url: str) -> Target:
        parts = urlsplit(url)
        database = unquote(parts.path.lstrip("/"))
        if not database:
            raise BackupError(f"数据库地址 {cls.redacted(url)} 没有写数据库名")
        return cls(host=parts.hostname or "localhost", port=parts.port or 5432,
                   user=unquote(parts.username or "postgres"),
                   password=unquote(parts.password) if parts.password is not None else None, database=database)

    @staticmethod
    def redacted(url: str) -> str:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        return url.replace(f":{parts.password}@", ":***@", 1)

    def describe(self) -> str:
        return f"postgres://{self.user}@{self.host}:{self.port}/{self.database}"

    def tool_arguments(self) -> list[str]:
        # --no-password: a cron job must fail at once rather than wait for someone to type a password
        return ["--host", self.host, "--port", str(self.port), "--username", self.user, "--dbname", self.database,
                "--no-password"]

    def tool_environment(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.password is not None:
            env["PGPASSWORD"] = self.password
        return env

    async def connect(self):
        import asyncpg

        try:
            return await asyncpg.connect(host=self.host, port=self.port, user=self.user, password=self.password,
                                         database=self.database, timeout=10)
        except asyncpg.InvalidCatalogNameError:
            raise BackupError(f"数据库 {self.database} 不存在:先在 {self.host} 上创建它(createdb -h {self.host} "
                              f"-U {self.user} {self.database}),再恢复") from None
        except (OSError, asyncio.TimeoutError, asyncpg.PostgresError) as exc:
            raise BackupError(f"连不上 PostgreSQL {self.describe()}:{exc}") from None


def find_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(CLIENT_PACKAGE.format(tool=name))
    return path


def ready_to_dump(url: str) -> None:
    Target.from_url(url)
    find_tool("pg_dump")


def ready_to_restore() -> None:
    find_tool("pg_restore")


def describe(url: str) -> str:
    return Target.from_url(url).describe()


async def read_state(conn) -> DatabaseState:
    tables = [row["tablename"] for row in await conn.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")]
    counts = {name: await conn.fetchval(f'SELECT count(*) FROM public."{name}"') for name in tables}
    migrations = []
    if MIGRATIONS_TABLE in counts:
        migrations = [row["name"] for row in await conn.fetch(
            f"SELECT name FROM public.{MIGRATIONS_TABLE} WHERE app = 'sidan' ORDER BY id")]
    return DatabaseState(counts, migrations)


async def _run(tool: str, arguments: list[str], target: Target, what: str) -> None:
    process = await asyncio.create_subprocess_exec(tool, *arguments, env=target.tool_environment(),
                                                   stdin=asyncio.subprocess.DEVNULL,
                                                   stdout=asyncio.subprocess.DEVNULL,
                                                   stderr=asyncio.subprocess.PIPE)
    _, errors = await process.communicate()
    if process.returncode != 0:
        message = errors.decode(errors="replace").strip()
        hint = ";pg_dump 的版本要不低于服务器的版本" if "version mismatch" in message else ""
        raise BackupError(f"{what}失败(退出码 {process.returncode}):{message}{hint}")


async def dump(url: str, target_file: Path) -> DatabaseState:
    pg_dump = find_tool("pg_dump")
    target = Target.from_url(url)
    conn = await target.connect()
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            snapshot = await conn.fetchval("SELECT pg_export_snapshot()")
            state = await read_state(conn)
            # The snapshot lives as long as this transaction: pg_dump must finish inside it.
            await _run(pg_dump, ["--format=custom", f"--snapshot={snapshot}", "--file", str(target_file),
                                 *target.tool_arguments()], target, "pg_dump ")
            return state
    finally:
        await conn.close()


async def inspect(url: str) -> DatabaseState:
    conn = await Target.from_url(url).connect()
    try:
        return await read_state(conn)
    finally:
        await conn.close()


async def restore(backup_file: Path, url: str, current: DatabaseState | None, backup_tables: set[str]) -> None:
    pg_restore = find_tool("pg_restore")
    target = Target.from_url(url)
    # Tables the backup does not know (made by a later migration) would outlive --clean, keep foreign keys to the
    # restored tables and make the next `sidan migrate` fail on "already exists".
    strangers = sorted(set(current.tables if current else ()) - backup_tables)
    if strangers:
        conn = await target.connect()
        try:
            async with conn.transaction():
                for name in strangers:
                    await conn.execute(f'DROP TABLE IF EXISTS public."{name}" CASCADE')
        finally:
            await conn.close()
    # One transaction: a failure half-way leaves the database as it was.
    await _run(pg_restore, ["--clean", "--if-exists", "--no-owner", "--no-privileges", "--single-transaction",
                            "--exit-on-error", *target.tool_arguments(), str(backup_file)], target, "pg_restore ")
