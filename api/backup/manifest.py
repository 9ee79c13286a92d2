"""What a backup folder holds and how it proves it is whole: manifest.json, checksums, migration levels, the
folders of a backup directory."""
from __future__ import annotations

import hashlib
import json
import pkgutil
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

MANIFEST = "manifest.json"
FORMAT = "sidan-backup/1"
FOLDER_PREFIX = "sidan-backup-"
MIGRATIONS_TABLE = "tortoise_migrations"
CHUNK = 1 << 20

# How the tables are named to an administrator deciding whether their data may be overwritten.
TABLE_LABELS = {
    "orders": "工单", "order_event": "工单事件(办理记录)", "rating": "评价", "outbox": "待发/已发消息",
    "correction": "派单纠正", "inbound_message": "收到的微信消息", "resident": "群众", "staff": "工作人员",
    "invitation": "邀请", "department": "部门", "grid": "网格", "township": "乡镇", "duty_shift": "值班",
    "idempotency_record": "幂等记录", "daily_counter": "工单编号计数", "spent_token": "已用的登录令牌",
    "hotspot_alert": "热点诉求提醒", "hotspot_alert_order": "热点诉求提醒的工单",
}


class BackupError(Exception):
    """A backup or a restore that cannot go on; the message (Chinese) tells the administrator what to do."""


@dataclass(frozen=True)
class DatabaseState:
    """Row counts per table and the applied migrations, in the order they were applied."""

    tables: dict[str, int]
    migrations: list[str] = field(default_factory=list)

    @property
    def level(self) -> str | None:
        return self.migrations[-1] if self.migrations else None

    def data_rows(self) -> dict[str, int]:
        """The tables that hold data (the migration records are schema, not data)."""
        return {name: count for name, count in self.tables.items() if count and name != MIGRATIONS_TABLE}


def describe_rows(rows: dict[str, int]) -> str:
    order = list(TABLE_LABELS)
    ordered = sorted(rows.items(), key=lambda item: (order.index(item[0]) if item[0] in order else len(order), item[0]))
    return "、".join(f"{TABLE_LABELS.get(name, name)} {count} 行" for name, count in ordered)


def known_migrations() -> list[str]:
    """The migrations this version of sidan ships (the same files Tortoise's loader reads)."""
    import migrations

    return sorted(name for _, name, is_package in pkgutil.iter_modules(migrations.__path__)
                  if not is_package and name[0] not in "_~")


def sidan_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sidan")
    except PackageNotFoundError:
        return "unknown"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def copy_hashing(source: BinaryIO, target: Path) -> str:
    """Copy a stream into a new file; the checksum is of the bytes written, not of a second read."""
    digest = hashlib.sha256()
    with target.open("wb") as out:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def file_entry(path: Path, digest: str | None = None) -> dict[str, Any]:
    return {"sha256": digest or sha256_of(path), "bytes": path.stat().st_size}


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    (folder / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupError(not_a_backup(folder)) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BackupError(f"{path} 已损坏(不是有效的 JSON:{exc}),拒绝恢复") from None
    required = ("format", "backend", "migrations", "tables", "files", "created_at")
    missing = [key for key in required if key not in manifest] if isinstance(manifest, dict) else list(required)
    if missing:
        raise BackupError(f"{path} 不完整(缺少 {', '.join(missing)}),拒绝恢复")
    if manifest["format"] != FORMAT:
        raise BackupError(f"{path} 的格式 {manifest['format']!r} 不是本版本认识的 {FORMAT!r},拒绝恢复")
    return manifest


def not_a_backup(folder: Path) -> str:
    if not folder.is_dir():
        return f"{folder} 不存在或不是文件夹"
    inside = [path.name for path in backups_in(folder)]
    if inside:
        return (f"{folder} 是存放备份的目录,不是一份备份;请指定其中一份,例如 sidan restore {folder / inside[-1]}"
                f"(共 {len(inside)} 份,最新的是 {inside[-1]})")
    return f"{folder} 里没有 {MANIFEST}:这不是 sidan backup 写出的备份"


def verify_files(folder: Path, manifest: dict[str, Any]) -> None:
    """Every file the manifest lists is there, with its size and checksum; else nothing may be restored."""
    problems = []
    for name, entry in sorted(manifest["files"].items()):
        path = folder / name
        if ".." in Path(name).parts or Path(name).is_absolute():
            problems.append(f"{name}: 路径不合法")
        elif not path.is_file():
            problems.append(f"{name}: 文件缺失")
        elif path.stat().st_size != entry.get("bytes"):
            problems.append(f"{name}: 大小不符(应为 {entry.get('bytes')} 字节,实为 {path.stat().st_size})")
        elif sha256_of(path) != entry.get("sha256"):
            problems.append(f"{name}: 校验和(SHA-256)不符")
    if problems:
        shown = ";".join(problems[:5]) + (f";另有 {len(problems) - 5} 处" if len(problems) > 5 else "")
        raise BackupError(f"备份 {folder} 已损坏,拒绝恢复:{shown}。请换用另一份备份")


def check_migrations(manifest: dict[str, Any]) -> list[str]:
    """Refuse a backup made by a newer sidan; returns this version's migrations that the backup has not applied."""
    known = known_migrations()
    newer = [name for name in manifest["migrations"] if name not in known]
    if newer:
        raise BackupError(
            f"备份的数据库结构比本版本的 sidan 新(备份有迁移 {', '.join(newer)},本版本最高到 {known[-1]}):"
            f"请先把 sidan 升级到 {manifest.get('sidan_version', '备份时的')} 或更新的版本,再恢复")
    if not manifest["migrations"]:
        raise BackupError("备份里的数据库没有迁移记录,无法判断其结构,拒绝恢复")
    return [name for name in known if name not in manifest["migrations"]]


def backups_in(directory: Path) -> list[Path]:
    """The finished backups in a directory, oldest first (a folder being written has no manifest yet)."""
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        if path.is_dir() and path.name.startswith(FOLDER_PREFIX) and (path / MANIFEST).is_file():
            try:
                created = datetime.fromisoformat(json.loads((path / MANIFEST).read_text(encoding="utf-8"))["created_at"])
            except (ValueError, KeyError, TypeError, UnicodeDecodeError):
                continue  # a damaged backup is neither a base for links nor removed by --keep
            found.append((created.timestamp(), path.name, path))
    return [path for *_, path in sorted(found)]


def prune(directory: Path, keep: int, current: Path) -> list[Path]:
    """Remove the oldest backups beyond the newest `keep` (never the one just written)."""
    backups = backups_in(directory)
    old = [path for path in backups if path != current][: max(0, len(backups) - keep)]
    for path in old:
        shutil.rmtree(path)
    return old
