"""The media downloads: each pending Media row is a job that copies a resident's photo or voice out of WeChat
into the media store, shortly after it arrived and well before WeChat forgets it (about three days).

Claimed like the outbox (orders/polling.py: a lease, no two workers on one row, a dead worker's rows due again),
fetched through an injected MediaSource (bot.media_source.WeChatMedia: WeChat's media/get, the PicUrl as fallback),
kept by content (sha256), then the row is `stored`. A failure is retried with exponential backoff; after
media.fetch_max_attempts, or at once when WeChat no longer has the medium and there is no other copy, the row is
`failed` and the order view says "照片未能保存". That is a fact about the evidence, not a message nobody received:
no 消息未送达 alert is raised.

The domain imports no WeChat code: the source raises the exceptions below to say what went wrong.
"""
from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import Protocol

from tortoise.expressions import F

from orders import models
from orders.clock import Clock
from orders.config import Settings
from orders.evidence import sniff, stored_fields
from orders.media_store import MediaStore
from orders.polling import Poller, Tally, error_text

log = logging.getLogger("sidan.media")

MEDIA_TYPES = ("image/", "audio/", "voice/")  # WeChat's voice: audio/amr, voice/speex


class FetchFailed(Exception):
    """The medium could not be had now; try again later."""


class MediaGone(FetchFailed):
    """No copy is left to fetch (WeChat forgot the media id, the PicUrl answers nothing): failed at once."""


@dataclass(frozen=True)
class Fetched:
    data: bytes
    content_type: str  # as the source declared it


class MediaSource(Protocol):
    async def fetch(self, media_id: str | None, pic_url: str | None) -> Fetched:
        """The medium's bytes; raise FetchFailed (or anything) to retry, MediaGone when retrying cannot help."""


@dataclass
class FetchReport(Tally):
    stored: int = 0
    retried: int = 0
    failed: int = 0


class MediaFetcher(Poller):
    model = models.Media
    what = "media download"
    tally = FetchReport
    log = log

    def __init__(
        self,
        settings: Settings,
        source: MediaSource,
        store: MediaStore,
        clock: Clock | None = None,
        *,
        name: str | None = None,
        lease_seconds: float = 300.0,
        poll_seconds: float | None = None,
        batch_size: int = 10,
        max_attempts: int | None = None,
        backoff_base_seconds: float | None = None,
        backoff_max_seconds: float | None = None,
        rng: random.Random | None = None,
    ) -> None:
        media = settings.media
        super().__init__(clock, name, lease_seconds,
                         poll_seconds if poll_seconds is not None else media.fetch_poll_seconds, batch_size)
        self.source = source
        self.store = store
        self.max_attempts = max_attempts or media.fetch_max_attempts
        self.backoff_base = (backoff_base_seconds if backoff_base_seconds is not None
                             else media.fetch_backoff_base_seconds)
        self.backoff_max = backoff_max_seconds if backoff_max_seconds is not None else media.fetch_backoff_max_seconds
        self.rng = rng or random.Random()
        self.totals = FetchReport()

    async def run_once(self) -> FetchReport:
        """Claim one batch of due downloads and work them one by one."""
        report = FetchReport()
        rows = await self.claim()
        report.claimed = len(rows)
        for row in rows:
            try:
                fetched = await self.source.fetch(row.wechat_media_id, row.pic_url)
                await self._keep(row, fetched)
            except Exception as exc:  # noqa: BLE001 - any failure of one download is recorded, never lost
                await self._failed(row, exc, report)
            else:
                report.stored += 1
        self.totals.add(report)
        return report

    async def _keep(self, row: models.Media, fetched: Fetched) -> None:
        if not fetched.data:
            raise FetchFailed("empty answer")
        content_type = sniff(fetched.data) or fetched.content_type or "application/octet-stream"
        if not content_type.startswith(MEDIA_TYPES):  # a proxy's error page is no evidence: try again later
            raise FetchFailed(f"not a photo or a voice message: {content_type}")
        fields = stored_fields(fetched.data, content_type)
        await self.store.put(fields["storage_key"], fetched.data, content_type)
        updated = await self.mine(row.id).update(status="stored", stored_at=self.now(), attempts=F("attempts") + 1,
                                                 claimed_by=None, last_error=None, **fields)
        if not updated:
            log.warning("media %s was stored after our lease ran out; another worker may store it again", row.id)

    async def _failed(self, row: models.Media, error: Exception, report: FetchReport) -> None:
        attempts = row.attempts + 1
        message = error_text(error)
        if isinstance(error, MediaGone) or attempts >= self.max_attempts:
            await self.mine(row.id).update(status="failed", attempts=attempts, last_error=message, claimed_by=None)
            log.error("media %s (order %s, %s) not kept after %d attempts: %s", row.id, row.order_id, row.kind,
                      attempts, message)
            report.failed += 1
            return
        delay = await self.retry_later(row, attempts, message)
        log.info("media %s attempt %d failed, retry in %.0fs: %s", row.id, attempts, delay, message)
        report.retried += 1
