"""The media downloads on both database backends, through the real WeChat client to the fake WeChat server on
loopback: a resident's photo and voice copied out of WeChat into the media store (local files and S3), retried
with backoff while WeChat is away, the PicUrl when the media id is gone, failed without a 消息未送达 alert, and
picked up again after a worker dies."""
from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest

from api.demo.township import load_demo_data
from bot.media_source import WeChatMedia
from bot.wechat_api import WeChatClient
from orders import models
from orders.clock import FrozenClock
from orders.dispatcher import ALERT_KIND
from orders.media_fetch import MediaFetcher
from orders.media_store import MediaStore, open_media_store
from orders.services import Actor, OrderService
from tests.fake_wechat import FakeWeChat
from tests.support import FakeClassifier, photo_bytes

START = datetime(2026, 11, 24, 1, 0, tzinfo=timezone.utc)
AMR = b"#!AMR\n" + bytes(range(200))
RESIDENT = "oResidentMedia0001"


@dataclass
class Wired:
    fake: FakeWeChat
    clock: FrozenClock
    media: MediaStore
    service: OrderService
    source: WeChatMedia

    def fetcher(self, **options) -> MediaFetcher:
        options = {"rng": random.Random(5), "backoff_base_seconds": 30.0, "backoff_max_seconds": 3600.0, **options}
        return MediaFetcher(self.service.settings, self.source, self.media, self.clock, **options)

    async def report(self, photos: list[tuple[str, str]] = (), voice: str | None = None) -> models.Order:
        """A resident's report that came with photos (media id, PicUrl) and maybe as a voice message."""
        held = [{"media_id": media_id, "url": url, "at": self.clock.now().isoformat()} for media_id, url in photos]
        return (await self.service.submit(openid=RESIDENT, text="村口的路灯坏了", photos=held, voice=voice)).order


@pytest.fixture
async def wired(settings, store, orm, tmp_path):
    await load_demo_data()
    fake = FakeWeChat().start()
    settings = settings.with_overrides(wechat={"api_base": fake.base_url, "api_timeout_seconds": 0.5})
    client = WeChatClient(settings, store)
    media = open_media_store(str(tmp_path / "media"))
    clock = FrozenClock(START)
    yield Wired(fake, clock, media, OrderService(settings, FakeClassifier(), clock=clock, media_store=media),
                WeChatMedia(client))
    await client.close()
    fake.stop()


async def test_a_reports_photo_and_voice_are_copied_out_of_wechat_and_outlive_it(wired, media_url):
    wired.media = wired.service._media_store = open_media_store(media_url)  # each backend of the store
    jpeg = photo_bytes()
    pic_url = wired.fake.add_media("m-photo", jpeg)
    wired.fake.add_media("m-voice", AMR, "audio/amr")
    order = await wired.report([("m-photo", pic_url)], voice="m-voice")
    assert await models.Media.filter(order_id=order.id, status="pending").count() == 2  # with the order, at once

    report = await wired.fetcher().run_until_idle()
    assert (report.stored, report.failed) == (2, 0)

    rows = {row.kind: row for row in await models.Media.filter(order_id=order.id)}
    for kind, data, content_type in (("image", jpeg, "image/jpeg"), ("voice", AMR, "audio/amr")):
        row = rows[kind]
        assert (row.status, row.source, row.content_type, row.size) == ("stored", "resident", content_type, len(data))
        assert row.sha256 == hashlib.sha256(data).hexdigest() and row.attempts == 1 and row.claimed_by is None
        assert await wired.media.get(row.storage_key) == data
    wired.fake.forget("m-photo", picture=True)
    wired.fake.forget("m-voice")  # three days later WeChat has neither: the handling department still does
    clerk = Actor.of_staff(await models.Staff.get(openid="demo-dept_staff-jianshe"))
    assert (await wired.service.media_content(rows["image"].id, clerk))[1] == jpeg
    assert (await wired.service.media_content(rows["voice"].id, clerk))[1] == AMR
    await wired.media.close()


async def test_a_photo_added_to_an_open_order_is_downloaded_too(wired):
    order = await wired.report()
    pic_url = wired.fake.add_media("m-later", photo_bytes((1, 2, 3)))
    resident = Actor.of_resident(await models.Resident.get(openid=RESIDENT))
    await wired.service.add_photo(order.number, resident, "m-later", pic_url)
    await wired.fetcher().run_until_idle()
    [row] = await models.Media.filter(order_id=order.id)
    assert (row.status, row.wechat_media_id, row.pic_url) == ("stored", "m-later", pic_url)


async def test_while_wechat_is_away_the_download_waits_with_backoff_then_succeeds(wired):
    wired.fake.add_media("m1", photo_bytes())
    order = await wired.report([("m1", None)])
    wired.fake.stop()
    fetcher = wired.fetcher()
    first = await fetcher.run_once()
    assert (first.claimed, first.retried) == (1, 1)
    [row] = await models.Media.filter(order_id=order.id)
    assert row.status == "pending" and row.attempts == 1 and "ConnectError" in row.last_error
    assert START + timedelta(seconds=15) <= row.next_attempt_at <= START + timedelta(seconds=30)
    assert (await fetcher.run_once()).claimed == 0  # not due yet
    wired.clock.advance(seconds=31)
    second = await fetcher.run_once()
    [row] = await models.Media.filter(order_id=order.id)
    assert second.retried == 1 and row.attempts == 2
    assert row.next_attempt_at - wired.clock.now() >= timedelta(seconds=30)  # growing: 30–60 s after the second
    wired.fake.start()  # back, same port
    wired.clock.advance(seconds=61)
    assert (await fetcher.run_once()).stored == 1
    assert (await models.Media.get(id=row.id)).status == "stored"


async def test_a_download_that_keeps_failing_is_marked_failed_and_raises_no_undelivered_alert(wired):
    wired.fake.add_media("m1", photo_bytes())
    order = await wired.report([("m1", None)])
    wired.fake.stop()
    fetcher = wired.fetcher(max_attempts=3)
    for _ in range(3):
        await fetcher.run_once()
        wired.clock.advance(hours=2)
    [row] = await models.Media.filter(order_id=order.id)
    assert (row.status, row.attempts, row.claimed_by) == ("failed", 3, None)
    assert await models.Outbox.filter(kind=ALERT_KIND).count() == 0  # evidence lost is not a message undelivered
    wired.fake.start()
    wired.clock.advance(days=1)
    assert (await fetcher.run_once()).claimed == 0  # failed is final
    assert wired.fake.media_requests() == []


async def test_a_medium_wechat_forgot_fails_at_once_unless_its_picurl_still_answers(wired):
    kept_url = wired.fake.add_media("m-kept", photo_bytes((9, 9, 9)))
    lost_url = wired.fake.add_media("m-lost", photo_bytes((7, 7, 7)))
    wired.fake.forget("m-kept")
    wired.fake.forget("m-lost", picture=True)
    order = await wired.report([("m-kept", kept_url), ("m-lost", lost_url)])
    report = await wired.fetcher().run_until_idle()
    assert (report.stored, report.failed, report.retried) == (1, 1, 0)
    rows = {row.wechat_media_id: row for row in await models.Media.filter(order_id=order.id)}
    assert rows["m-kept"].status == "stored" and await wired.media.get(rows["m-kept"].storage_key) == \
        photo_bytes((9, 9, 9))
    assert (rows["m-lost"].status, rows["m-lost"].attempts) == ("failed", 1)
    assert "40007" in rows["m-lost"].last_error
    paths = [request.path for request in wired.fake.media_requests()]
    assert paths.count("/cgi-bin/media/get") == 2 and len(paths) == 4  # each id first, then each PicUrl


async def test_a_page_in_place_of_a_photo_is_not_kept(wired):
    wired.fake.add_media("m-page", b"<html><body>portal login</body></html>", "text/html")
    order = await wired.report([("m-page", None)])
    assert (await wired.fetcher(max_attempts=1).run_once()).failed == 1
    [row] = await models.Media.filter(order_id=order.id)
    assert (row.status, row.storage_key, row.sha256) == ("failed", None, None)
    assert "not a photo or a voice message: text/html" in row.last_error


async def test_downloads_claimed_by_a_worker_that_died_are_done_by_the_next_one(wired):
    for media_id in ("m1", "m2"):
        wired.fake.add_media(media_id, photo_bytes((len(media_id), 0, 0)) + media_id.encode())
    order = await wired.report([("m1", None), ("m2", None)])
    dead = wired.fetcher(name="worker-that-died", lease_seconds=300)
    assert len(await dead.claim()) == 2  # claimed, then the process was killed before it recorded anything
    restarted = wired.fetcher(name="worker-after-restart")
    assert (await restarted.run_once()).claimed == 0  # the dead worker's lease still holds
    wired.clock.advance(seconds=301)
    assert (await restarted.run_until_idle()).stored == 2
    assert {row.status for row in await models.Media.filter(order_id=order.id)} == {"stored"}
