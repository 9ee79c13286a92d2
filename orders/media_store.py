"""The media store: the bytes of the evidence (photos, voice), kept by key, the key made from their sha256.

One Protocol, two backends, chosen by one URL (config `[media] url`, SIDAN_MEDIA_URL): local files under a folder
(the default, `var/media`, relative to the working directory like the SQLite file) and S3-compatible object storage
(`s3://bucket/prefix?endpoint=http://…`, orders/media_s3.py). The Media rows (orders.models.Media) say which key
holds which medium, with its checksum and type; the store itself knows bytes only.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

SHA256 = re.compile(r"^[0-9a-f]{64}$")
KEY = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}$")
ADDRESSING = ("path", "virtual", "auto")


class MediaMissing(Exception):
    """No bytes under this key."""


class MediaStoreError(Exception):
    """The store did not answer or refused (a bucket away, a full disk): worth trying again later."""


class MediaStore(Protocol):
    kind: str  # "local" | "s3"

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        """Keep `data` under `key`, whole or not at all."""

    async def get(self, key: str) -> bytes:
        """The bytes under `key`; MediaMissing when there are none."""

    async def delete(self, key: str) -> None:
        """Forget `key` (nothing happens when it is not there)."""

    async def close(self) -> None: ...


def content_key(sha256: str) -> str:
    """ab/cd/abcd…: content-addressed, so the same bytes are kept once; two levels of folders keep any one folder
    small on a local disk (65,536 of them at most) and spread the keys of a bucket."""
    if not SHA256.match(sha256):
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")
    return f"{sha256[:2]}/{sha256[2:4]}/{sha256}"


def checked_key(key: str) -> str:
    if not KEY.match(key):  # never a path of the caller's making: no "..", no absolute path
        raise ValueError(f"not a media key: {key!r}")
    return key


# ---------------------------------------------------------------------------------------------- where
@dataclass(frozen=True)
class LocalLocation:
    root: Path


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str
    endpoint: str | None  # None: AWS itself
    region: str | None
    access_key: str | None  # None: boto3's own chain (AWS_ACCESS_KEY_ID, …)
    secret_key: str | None
    addressing: str  # path (MinIO) | virtual (Aliyun OSS, Tencent COS) | auto

    def full_key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key


def parse_media_url(url: str) -> LocalLocation | S3Location:
    """The location a media URL names; ValueError saying what is wrong (the config check names the key)."""
    url = url.strip()
    if not url:
        raise ValueError("must name a folder, file:///path or s3://bucket/prefix")
    if url.startswith("file://"):
        path = unquote(url[len("file://"):])
        if not path:
            raise ValueError("file:// needs a path, e.g. file:///srv/sidan/media")
        return LocalLocation(Path(path).expanduser())
    if url.startswith("s3://"):
        return _s3_location(url)
    if "://" in url:
        raise ValueError(f"unknown scheme {url.split('://', 1)[0]!r}: use a folder, file://… or s3://…")
    return LocalLocation(Path(url).expanduser())


def _s3_location(url: str) -> S3Location:
    parts = urlsplit(url)
    bucket = parts.hostname or ""
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket):
        raise ValueError("s3:// needs a bucket name (3–63 lowercase letters, digits, dots, hyphens): "
                         "s3://bucket/prefix?endpoint=http://…")
    query = {name: values[-1] for name, values in parse_qs(parts.query, keep_blank_values=True).items()}
    unknown = set(query) - {"endpoint", "region", "addressing"}
    if unknown:
        raise ValueError(f"unknown s3 parameter(s) {', '.join(sorted(unknown))}: endpoint, region, addressing")
    endpoint = query.get("endpoint") or None
    if endpoint is not None and not endpoint.startswith(("http://", "https://")):
        raise ValueError("endpoint must start with http:// or https://")
    addressing = query.get("addressing") or "path"
    if addressing not in ADDRESSING:
        raise ValueError(f"addressing must be one of {', '.join(ADDRESSING)}")
    if bool(parts.username) != bool(parts.password):
        raise ValueError("credentials in the URL need both parts: s3://ACCESS_KEY:SECRET_KEY@bucket/…")
    return S3Location(bucket=bucket, prefix=parts.path.strip("/"), endpoint=endpoint.rstrip("/") if endpoint else None,
                      region=query.get("region") or None, access_key=unquote(parts.username or "") or None,
                      secret_key=unquote(parts.password or "") or None, addressing=addressing)


def open_media_store(url: str) -> MediaStore:
    location = parse_media_url(url)
    if isinstance(location, S3Location):
        from orders.media_s3 import S3MediaStore

        return S3MediaStore(location)
    return LocalMediaStore(location.root)


# ---------------------------------------------------------------------------------------------- local files
class LocalMediaStore:
    """Files under one folder. A file appears whole or not at all: written to a temporary file beside it, flushed
    to the disk, then renamed over its name (atomic on one file system), so a crash never leaves half a photo."""

    kind = "local"

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise MediaStoreError(f"media folder {self.root} cannot be created: {exc}") from exc

    def path_of(self, key: str) -> Path:
        return self.root / checked_key(key)

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(self._write, self.path_of(key), data)

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        if path.exists() and path.stat().st_size == len(data):
            return  # content-addressed: the same key already holds these bytes
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
            try:
                with os.fdopen(handle, "wb") as stream:
                    stream.write(data)
                    stream.flush()
                    os.fsync(stream.fileno())
                os.replace(temporary, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise
        except OSError as exc:
            raise MediaStoreError(f"cannot write {path}: {exc}") from exc

    async def get(self, key: str) -> bytes:
        path = self.path_of(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            raise MediaMissing(key) from None
        except OSError as exc:
            raise MediaStoreError(f"cannot read {path}: {exc}") from exc

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.path_of(key).unlink, missing_ok=True)

    async def close(self) -> None:
        return None
