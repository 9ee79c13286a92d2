"""Staff photos on both database backends: uploaded (checked by their bytes, size-limited, kept at once), named in
progress and resolve (only one's own, unused uploads), read only by those who may see the order; and the photos
orders held before the media table became downloads of their own (migration 0009)."""
from __future__ import annotations

import importlib
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest
from tortoise import Tortoise

from api.demo.township import load_demo_data
from orders import models
from orders.errors import InvalidInput, NotFound
from orders.evidence import MediaTooLarge, UnsupportedMedia
from orders.media_store import LocalMediaStore
from orders.services import Actor, OrderService
from tests.support import FakeClassifier, photo_bytes


@pytest.fixture
async def service(settings, orm, tmp_path):
    await load_demo_data()
    settings = settings.with_overrides(media={"max_upload_bytes": 4096})
    return OrderService(settings, FakeClassifier(), media_store=LocalMediaStore(tmp_path / "media"))


async def staff(openid: str) -> Actor:
    return Actor.of_staff(await models.Staff.get(openid=openid))


async def accepted_lamp_order(service: OrderService, openid: str = "oResidentUpload01") -> tuple[str, Actor]:
    number = (await service.submit(openid=openid, text="村口的路灯坏了")).order.number
    clerk = await staff("demo-dept_staff-jianshe")
    await service.accept(number, clerk)
    return number, clerk


def files_in(store: LocalMediaStore) -> list[str]:
    return sorted(path.name for path in store.root.rglob("*") if path.is_file())


async def test_an_upload_is_kept_at_once_and_attached_by_progress_and_resolve(service):
    number, clerk = await accepted_lamp_order(service)
    first, second = await service.upload(clerk, photo_bytes()), await service.upload(clerk, photo_bytes(fmt="PNG"))
    assert (first.status, first.order_id, first.uploaded_by_id, first.content_type) == ("stored", None, clerk.id,
                                                                                       "image/jpeg")
    assert second.content_type == "image/png"
    assert files_in(service.media_store) == sorted([first.sha256, second.sha256])

    await service.progress(number, clerk, "电工已到现场", photos=[first.id])
    await service.resolve(number, clerk, "已更换灯泡", photos=[str(second.id), first.id])  # ids as the API sends them
    rows = {row.id: row for row in await models.Media.filter(order__number=number)}
    assert {(media_id, row.source) for media_id, row in rows.items()} == {(first.id, "progress"),
                                                                           (second.id, "resolve")}
    events = {event.action: event.data for event in await models.OrderEvent.filter(order__number=number)}
    assert events["progress"]["photos"] == [first.id] and events["resolve"]["photos"] == [second.id, first.id]


@pytest.mark.parametrize(("data", "error", "message"), [
    (b"<html>not a photo</html>", UnsupportedMedia, "只能上传 JPEG、PNG、WebP、HEIC、HEIF 格式的照片"),
    (photo_bytes(fmt="GIF"), UnsupportedMedia, "只能上传"),
    (b"\xff\xd8\xff" + b"\x00" * 5000, MediaTooLarge, "照片太大了"),
    (b"", InvalidInput, "照片是空的"),
])
async def test_what_is_no_photo_or_too_large_is_refused_clearly_and_nothing_is_kept(service, data, error, message):
    clerk = await staff("demo-dept_staff-jianshe")
    with pytest.raises(error, match=message):
        await service.upload(clerk, data)
    assert await models.Media.all().count() == 0 and files_in(service.media_store) == []


async def test_only_ones_own_unused_uploads_can_be_named_and_a_refusal_changes_nothing(service):
    number, clerk = await accepted_lamp_order(service)
    other_clerk = await staff("demo-supervisor")
    theirs = await service.upload(other_clerk, photo_bytes((1, 1, 1)))
    mine = await service.upload(clerk, photo_bytes((2, 2, 2)))
    other_number, _ = await accepted_lamp_order(service, "oResidentUpload02")
    await service.progress(other_number, clerk, "另一单的照片", photos=[mine.id])
    version = (await models.Order.get(number=number)).version
    for photos in ([theirs.id], [mine.id], [999999], ["not-an-id"], [mine.id] * 1 + list(range(1, 10))):
        with pytest.raises(InvalidInput):
            await service.progress(number, clerk, "进展", photos=photos)
    assert (await models.Order.get(number=number)).version == version
    assert await models.OrderEvent.filter(order__number=number, action="progress").count() == 0
    assert (await models.Media.get(id=theirs.id)).order_id is None


async def test_a_medium_is_read_by_whoever_may_see_its_order_and_an_upload_by_its_uploader(service):
    number, clerk = await accepted_lamp_order(service)
    upload = await service.upload(clerk, photo_bytes())
    with pytest.raises(NotFound):
        await service.media_content(upload.id, await staff("demo-dept_staff-minzheng"))  # not theirs yet
    assert (await service.media_content(upload.id, clerk))[1] == photo_bytes()
    await service.progress(number, clerk, "现场照片", photos=[upload.id])
    owner = Actor.of_resident(await models.Resident.get(openid="oResidentUpload01"))
    stranger = Actor.of_resident((await models.Resident.get_or_create(openid="oSomebodyElse01"))[0])
    assert (await service.media_content(upload.id, owner))[1] == photo_bytes()
    assert (await service.media_content(upload.id, await staff("demo-supervisor")))[1] == photo_bytes()
    assert (await service.media_content(upload.id, None))[1] == photo_bytes()  # a signed link was checked
    for outsider in (stranger, await staff("demo-dept_staff-minzheng")):
        with pytest.raises(NotFound):
            await service.media_content(upload.id, outsider)
    order = await models.Order.get(number=number)
    pending = await models.Media.create(order_id=order.id, source="resident", kind="image", status="pending",
                                       wechat_media_id="m1", created_at=datetime.now(timezone.utc))
    with pytest.raises(NotFound, match="照片保存中"):
        await service.media_content(pending.id, clerk)


async def test_photos_orders_held_before_the_media_table_become_downloads(service):
    number, _ = await accepted_lamp_order(service)
    sent_at = "2026-11-20T09:30:00+08:00"
    await models.Order.filter(number=number).update(photos=[
        {"media_id": "old-1", "url": "http://mmbiz.qpic.cn/old-1.jpg", "at": sent_at},
        {"media_id": "old-2", "url": None, "at": "not a time"}, {"nonsense": True}])
    migration = importlib.import_module("migrations.0009_media")
    await migration.keep_earlier_photos(None, SimpleNamespace(client=Tortoise.get_connection("default")))
    rows = await models.Media.filter(order__number=number).order_by("id")
    assert [(r.wechat_media_id, r.pic_url, r.status, r.source, r.kind) for r in rows] == [
        ("old-1", "http://mmbiz.qpic.cn/old-1.jpg", "pending", "resident", "image"),
        ("old-2", None, "pending", "resident", "image")]
    assert rows[0].created_at == datetime.fromisoformat(sent_at)
    assert (await models.Order.get(number=number)).photos[0]["media_id"] == "old-1"  # the old list stays as it was
