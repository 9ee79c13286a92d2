"""`sidan backup DIR` and `sidan restore DIR`.

A backup is one folder, DIR/sidan-backup-YYYYMMDD-HHMMSS/: the database (database.sqlite3, or database.pgdump in
pg_dump's custom format), the local media files under media/, and manifest.json (sidan version, migration level,
backend, time, row counts per table, size and SHA-256 of every file). It is written as a hidden .partial folder
and renamed when complete, so a folder with that name is always a whole backup.

A restore checks everything before it changes anything: the checksums, the backend, the migration level (a
backup from a newer sidan is refused), and a target that already holds data (refused without --force, naming
what would be lost). Afterwards it counts the rows again against the manifest.
"""
from __future__ import annotations

import asyncio
import shutil
import socket
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from api.backup import postgres, sqlite
from api.backup.manifest import (
    FOLDER_PREFIX, FORMAT, BackupError, backups_in, check_migrations, describe_rows, file_entry, not_a_backup,
    prune, read_manifest, sidan_version, verify_files, write_manifest,
)
from api.backup.media import copy_media, media_location, restore_media
from orders.db import is_postgres

ENGINES = {"sqlite": sqlite, "postgres": postgres}
BACKEND_NAMES = {"sqlite": "SQLite", "postgres": "PostgreSQL"}

__all__ = ["BackupError", "backup_command", "make_backup", "restore_backup", "restore_command"]


def backend_of(url: str) -> str:
    return "postgres" if is_postgres(url) else "sqlite"


def _megabytes(files: dict[str, dict[str, Any]]) -> str:
    return f"{sum(entry['bytes'] for entry in files.values()) / 1e6:.1f} MB"


def _folder_for(directory: Path, moment: datetime) -> Path:
    base = FOLDER_PREFIX + moment.strftime("%Y%m%d-%H%M%S")
    candidate, n = directory / base, 1
    while candidate.exists() or (directory / f".{candidate.name}.partial").exists():
        n += 1
        candidate = directory / f"{base}-{n}"
    return candidate


def _files_of(previous: Path | None) -> dict[str, dict[str, Any]]:
    """The files of the previous backup, to link the unchanged media to; a damaged one is simply not used."""
    try:
        return read_manifest(previous)["files"] if previous is not None else {}
    except BackupError:
        return {}


async def make_backup(settings: Any, directory: Path, keep: int | None = None,
                      say: Callable[[str], None] = print) -> Path:
    url = settings.database.url
    backend = backend_of(url)
    engine = ENGINES[backend]
    if keep is not None and keep < 1:
        raise BackupError("--keep 至少为 1(保留最新的几份备份)")
    engine.ready_to_dump(url)  # before anything is written
    media = media_location(settings)
    if media.path is not None and directory.resolve().is_relative_to(media.path.resolve()):
        raise BackupError(f"备份目录 {directory} 在媒体目录 {media.path} 里面:请换一个目录(最好在另一块磁盘上)")
    previous = (backups_in(directory) or [None])[-1]
    moment = datetime.now(ZoneInfo(settings.app.timezone)).replace(microsecond=0)
    directory.mkdir(parents=True, exist_ok=True)
    final = _folder_for(directory, moment)
    partial = directory / f".{final.name}.partial"
    partial.mkdir(mode=0o700)  # residents' phone numbers are in there: for the administrator's eyes only
    try:
        database_file = partial / engine.DATABASE_FILE
        state = await engine.dump(url, database_file)
        if not state.migrations:
            raise BackupError("数据库里没有迁移记录(新库请先运行 sidan migrate):这样的备份无法恢复")
        files = {engine.DATABASE_FILE: file_entry(database_file)}
        media_files, linked = {}, 0
        if media.path is not None and media.path.is_dir():
            earlier = _files_of(previous)
            media_files, linked = copy_media(media.path, partial, previous, earlier)
        files |= media_files
        write_manifest(partial, {
            "format": FORMAT, "sidan_version": sidan_version(), "created_at": moment.isoformat(),
            "host": socket.gethostname(), "backend": backend, "database": engine.describe(url),
            "migration": state.level, "migrations": state.migrations, "tables": state.tables,
            "media": media.summary(len(media_files)), "files": files,
        })
        partial.rename(final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    say(f"备份完成: {final}")
    say(f"  数据库 {BACKEND_NAMES[backend]} {engine.describe(url)},迁移级别 {state.level}")
    say(f"  {describe_rows(state.data_rows()) or '(数据库是空的)'}")
    if media.path is None:
        say(f"  媒体文件在远程存储 {media.url}:不在备份里,由存储桶的版本控制和复制保护")
    elif not media.path.is_dir():
        say(f"  没有媒体目录 {media.path}(还没有存过照片或语音)")
    else:
        same = f"(其中 {linked} 个与上一份备份相同,已硬链接)" if linked else ""
        say(f"  媒体文件 {len(media_files)} 个{same},来自 {media.path}")
    say(f"  共 {_megabytes(files)}")
    for removed in prune(directory, keep, final) if keep else []:
        say(f"  已删除旧备份 {removed.name}(--keep {keep})")
    return final


async def restore_backup(settings: Any, folder: Path, force: bool = False, check_only: bool = False,
                         say: Callable[[str], None] = print) -> None:
    manifest = read_manifest(folder)
    verify_files(folder, manifest)
    url = settings.database.url
    backend = backend_of(url)
    if manifest["backend"] != backend:
        theirs = BACKEND_NAMES.get(manifest["backend"], manifest["backend"])
        raise BackupError(f"这份备份来自 {theirs} 数据库,而配置的数据库(SIDAN_DATABASE_URL)是 {BACKEND_NAMES[backend]}:"
                          f"不能跨数据库类型恢复,请把 SIDAN_DATABASE_URL 指向一个 {theirs} 数据库")
    pending = check_migrations(manifest)
    engine = ENGINES[backend]
    if engine.DATABASE_FILE not in manifest["files"]:
        raise BackupError(f"备份 {folder} 的清单里没有数据库文件 {engine.DATABASE_FILE},拒绝恢复")
    orders = manifest["tables"].get("orders", 0)
    if check_only:
        say(f"备份完好: {folder}({manifest['created_at']},{BACKEND_NAMES[backend]},迁移级别 {manifest['migration']},"
            f"工单 {orders} 张,{len(manifest['files'])} 个文件校验通过)")
        return
    engine.ready_to_restore()
    current = await engine.inspect(url)
    occupied = current.data_rows() if current else {}
    if occupied and not force:
        raise BackupError(
            f"目标数据库 {engine.describe(url)} 里已有数据:{describe_rows(occupied)}。恢复会用这份备份"
            f"({manifest['created_at']},工单 {orders} 张)整个替换它,上面这些数据将全部丢失。确需如此请加 --force"
            f"(建议先用 sidan backup 备份现有数据)")
    print(f"注意: {engine.STOP_THE_SERVER}", file=sys.stderr)
    await engine.restore(folder / engine.DATABASE_FILE, url, current, set(manifest["tables"]))
    after = await engine.inspect(url)
    differ = {name: (count, after.tables.get(name)) for name, count in manifest["tables"].items()
              if after.tables.get(name) != count}
    if differ:
        raise BackupError("恢复后核对行数与备份不符:" + "、".join(
            f"{name} 备份 {expected} 行,数据库 {found} 行" for name, (expected, found) in sorted(differ.items())))
    media = media_location(settings)
    restored_media = restore_media(folder, manifest, media)
    say(f"恢复完成: {folder} → {engine.describe(url)}")
    say(f"  {describe_rows(after.data_rows()) or '(备份的数据库是空的)'},行数与备份一致")
    media_count = sum(name.startswith("media/") for name in manifest["files"])
    if media.path is None and media_count:
        say(f"  备份里有 {media_count} 个本地媒体文件,但现在配置的媒体存储是远程的 {media.url}:未复制,"
            f"请把备份的 media/ 目录上传到存储桶")
    elif media_count:
        say(f"  媒体文件 {restored_media} 个 → {media.path}")
    if pending:
        say(f"  数据库处于备份时的迁移级别 {manifest['migration']};本版本还有 {len(pending)} 个迁移"
            f"({', '.join(pending)}):运行 sidan migrate 升级后再启动服务")
    else:
        say(f"  数据库结构与本版本一致(迁移级别 {manifest['migration']}),可以启动服务")


def _run(work) -> int:
    try:
        asyncio.run(work)
    except BackupError as exc:
        print(f"错误: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a folder that cannot be made or written, a full disk
        print(f"错误: 无法读写 {exc.filename or '文件'}:{exc.strerror or exc}", file=sys.stderr)
        return 2
    return 0


def backup_command(settings: Any, directory: str, keep: int | None = None) -> int:
    return _run(make_backup(settings, Path(directory), keep))


def restore_command(settings: Any, folder: str, force: bool = False, check_only: bool = False) -> int:
    path = Path(folder)
    if not path.is_dir():
        print(f"错误: {not_a_backup(path)}", file=sys.stderr)
        return 2
    return _run(restore_backup(settings, path, force, check_only))
