"""Evidence files (photos, voice) of the local media store, in and out of a backup.

They are copied after the database, so every file the copied rows name is already there. A file unchanged since
the previous backup in the same directory is hard-linked to it instead of copied (as rsync --link-dest does):
a daily backup costs the disk only the new photos. S3-compatible storage is not copied: the bucket's own
versioning and replication keep it.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from api.backup.manifest import copy_hashing, file_entry, sha256_of

DEFAULT_MEDIA = "var/media"
PREFIX = "media/"


@dataclass(frozen=True)
class MediaLocation:
    url: str
    path: Path | None  # None: a remote store (S3 and the like)

    def summary(self, files: int) -> dict[str, Any]:
        if self.path is None:
            return {"store": "remote", "url": self.url, "files": 0,
                    "note": "远程存储(S3 等)不在备份里:由存储桶自己的版本控制和跨区域复制保护"}
        summary = {"store": "local", "path": str(self.path.resolve()), "files": files}
        if not self.path.is_dir():
            summary["note"] = "媒体目录不存在:没有媒体文件"
        return summary


def media_location(settings: Any) -> MediaLocation:
    """Where evidence files live: `[media] url` when the media store is configured (a folder, file://… or a
    remote URL such as s3://…), else var/media, relative to the working directory as the SQLite file is."""
    section = getattr(settings, "media", None)
    url = str(getattr(section, "url", "") or DEFAULT_MEDIA)
    if "://" in url and not url.startswith("file://"):
        return MediaLocation(url, None)
    return MediaLocation(url, Path(url.removeprefix("file://")).expanduser())


def _link(earlier: Path, entry: dict[str, Any], target: Path) -> bool:
    try:
        if earlier.stat().st_size != entry["bytes"]:
            return False
        os.link(earlier, target)
        return True
    except OSError:  # gone, or a file system without hard links: copy instead
        return False


def copy_media(source_root: Path, folder: Path, previous: Path | None,
               previous_files: dict[str, dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], int]:
    """Copy the media folder into the backup folder; returns the manifest entries and how many were linked."""
    entries: dict[str, dict[str, Any]] = {}
    linked = 0
    for source in sorted(path for path in source_root.rglob("*") if path.is_file()):
        name = PREFIX + source.relative_to(source_root).as_posix()
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            earlier = previous_files.get(name)
            if previous is not None and earlier is not None:
                digest = sha256_of(source)
                if digest == earlier["sha256"] and _link(previous / name, earlier, target):
                    entries[name] = file_entry(target, digest)
                    linked += 1
                    continue
            with source.open("rb") as stream:
                digest = copy_hashing(stream, target)
        except FileNotFoundError:
            continue  # deleted while the backup ran: no row the backup holds can still need it
        shutil.copystat(source, target)
        entries[name] = file_entry(target, digest)
    return entries, linked


def restore_media(folder: Path, manifest: dict[str, Any], location: MediaLocation) -> int:
    """Copy the backup's media files into the media folder (files already there and not in the backup stay)."""
    names = [name for name in manifest["files"] if name.startswith(PREFIX)]
    if not names or location.path is None:
        return 0
    for name in names:
        target = location.path / name[len(PREFIX):]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(folder / name, target)  # a copy, never a link: the live file must not share the backup's bytes
    return len(names)
