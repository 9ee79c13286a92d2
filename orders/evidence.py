"""Evidence: the photos and voice messages of an order, kept in the media store because WeChat forgets them.

A resident's photo or voice is recorded as a pending Media row with the message that brought it (intake, add_photo)
and downloaded in the background (orders/media_fetch.py). Staff upload photos first (upload: checked by their
bytes, kept at once) and name them in progress or resolve, which attaches them to the order (attach_uploads).
Whoever may see an order may read its media (media_content).
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import filetype

from orders import models
from orders.errors import DomainError, InvalidInput, NotFound
from orders.lifecycle import Role
from orders.media_store import MediaMissing, MediaStore, MediaStoreError, content_key, open_media_store
from orders.unit_of_work import Actor, UnitOfWork

log = logging.getLogger("sidan.media")

# The photos a phone takes and WeChat passes on (HEIC: iPhones). filetype reads the type from the bytes themselves
# (magic numbers), never from the name or the header a client sends.
UPLOAD_TYPES = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WebP", "image/heic": "HEIC",
                "image/heif": "HEIF"}
MAX_PHOTOS_PER_ACTION = 9
STATUS_LABELS = {
    ("image", "pending"): "照片保存中", ("image", "stored"): "已保存", ("image", "failed"): "照片未能保存",
    ("voice", "pending"): "语音保存中", ("voice", "stored"): "已保存", ("voice", "failed"): "语音未能保存",
}


class MediaTooLarge(DomainError):
    code = "media_too_large"
    status = 413


class UnsupportedMedia(DomainError):
    code = "unsupported_media_type"
    status = 415


class MediaUnavailable(DomainError):
    code = "media_store_unavailable"
    status = 503


def sniff(data: bytes) -> str | None:
    """The MIME type the bytes themselves declare (their magic numbers), or None."""
    return filetype.guess_mime(data[:8192]) if data else None


def status_label(media: models.Media) -> str:
    return STATUS_LABELS.get((media.kind, media.status), media.status)


def stored_fields(data: bytes, content_type: str) -> dict[str, Any]:
    """What a Media row records of bytes it keeps: checksum, type, size, where."""
    digest = hashlib.sha256(data).hexdigest()
    return {"sha256": digest, "content_type": content_type[:64], "size": len(data), "storage_key": content_key(digest)}


def resident_media_rows(order_id: int, photos: Iterable[dict[str, Any]], voice: str | None,
                        now: datetime) -> list[dict[str, Any]]:
    """Pending downloads for what a resident sent with a report or after it: photos ({media_id, url}) and a voice
    message's media id. Each is its own job (orders/media_fetch.py), due at once."""
    common = {"order_id": order_id, "source": "resident", "status": "pending", "next_attempt_at": now,
              "created_at": now}
    rows = [{**common, "kind": "image", "wechat_media_id": (photo.get("media_id") or None),
             "pic_url": photo.get("url") or None} for photo in photos if photo.get("media_id") or photo.get("url")]
    if voice:
        rows.append({**common, "kind": "voice", "wechat_media_id": voice})
    return rows


async def attach_uploads(conn: Any, order: models.Order, actor: Actor, ids: Iterable[int], source: str) -> list[int]:
    """Staff uploads named in progress or resolve, attached to the order with that source. Each must be a stored
    photo uploaded by this member and unused, or already one of this order's; otherwise InvalidInput, nothing
    attached (the caller's transaction rolls back)."""
    wanted = list(dict.fromkeys(_media_id(raw) for raw in ids))
    if len(wanted) > MAX_PHOTOS_PER_ACTION:
        raise InvalidInput(f"每次最多 {MAX_PHOTOS_PER_ACTION} 张照片", field="photos")
    if not wanted:
        return []
    found = {media.id: media for media in await models.Media.filter(id__in=wanted).using_db(conn)}
    for media_id in wanted:
        media = found.get(media_id)
        own_upload = media is not None and media.order_id is None and media.uploaded_by_id == actor.id
        if media is None or not (own_upload or media.order_id == order.id) or media.kind != "image":
            raise InvalidInput(f"照片 {media_id} 不存在或不是您上传的,请重新上传", field="photos")
    unused = [media_id for media_id in wanted if found[media_id].order_id is None]
    if unused:
        await models.Media.filter(id__in=unused, order_id__isnull=True).using_db(conn).update(
            order_id=order.id, source=source)
    return wanted


def _media_id(raw: Any) -> int:
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise InvalidInput(f"照片 {str(raw)[:20]} 不存在,请先上传(POST /api/v1/media)", field="photos") from None


class Evidence(UnitOfWork):
    """The use cases of evidence (composed into OrderService)."""

    _media_store: MediaStore | None  # set by OrderService.__init__; opened from settings when first needed

    @property
    def media_store(self) -> MediaStore:
        if self._media_store is None:
            self._media_store = open_media_store(self.settings.media.url)
        return self._media_store

    async def upload(self, actor: Actor, data: bytes) -> models.Media:
        """A staff member's photo, checked by its bytes and kept at once; attached to an order when progress or
        resolve names it."""
        limit = self.settings.media.max_upload_bytes
        if len(data) > limit:
            raise MediaTooLarge(f"照片太大了({len(data) / 1048576:.1f} MB),最大 {limit / 1048576:.0f} MB,"
                                "请压缩后再上传", limit=limit)
        if not data:
            raise InvalidInput("照片是空的,请重新选择", field="file")
        content_type = sniff(data)
        if content_type not in UPLOAD_TYPES:
            raise UnsupportedMedia(f"只能上传 {'、'.join(dict.fromkeys(UPLOAD_TYPES.values()))} 格式的照片",
                                   detected=content_type or "unknown")
        fields = stored_fields(data, content_type)
        try:
            await self.media_store.put(fields["storage_key"], data, content_type)
        except MediaStoreError as exc:
            log.error("upload not kept: %s", exc)
            raise MediaUnavailable("照片暂时存不进去,请稍后再试") from None
        now = self.clock.now()
        return await models.Media.create(kind="image", status="stored", uploaded_by_id=actor.id, created_at=now,
                                         stored_at=now, **fields)

    async def media_content(self, media_id: int, actor: Actor | None) -> tuple[models.Media, bytes]:
        """A medium's row and bytes. `actor` must be allowed to see its order (or be the uploader of an unused
        upload); None: the caller holds a signed link to this medium."""
        media = await models.Media.get_or_none(id=media_id)
        if media is None or (actor is not None and not await self._may_read(actor, media)):
            raise NotFound("没有找到这个文件")
        if media.status != "stored" or not media.storage_key:
            raise NotFound(f"这个文件{status_label(media)}", status=media.status)
        try:
            return media, await self.media_store.get(media.storage_key)
        except MediaMissing:
            log.error("media %s is stored as %s but the store has no such key", media.id, media.storage_key)
            raise NotFound("这个文件已丢失,请联系管理员") from None
        except MediaStoreError as exc:
            log.error("media %s not readable: %s", media.id, exc)
            raise MediaUnavailable("文件暂时读不出来,请稍后再试") from None

    async def _may_read(self, actor: Actor, media: models.Media) -> bool:
        if media.order_id is None:
            return actor.role != Role.RESIDENT and media.uploaded_by_id == actor.id
        order = await models.Order.get_or_none(id=media.order_id)
        return order is not None and self.can_see(actor, order)
