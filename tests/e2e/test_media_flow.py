"""Evidence over HTTP on loopback, on SQLite and on PostgreSQL + Redis: a resident's photo and voice sent to the
official account are copied out of the fake WeChat by the server's own background loop, outlive WeChat forgetting
them, and reach those who handle the order (and the resident) through photos[].url, nobody else; staff upload photos
and name them in progress and resolve."""
from __future__ import annotations

import asyncio

import httpx
import pytest

from bot.chat import Simulator
from orders import models
from orders.dispatcher import ALERT_KIND
from tests.e2e.api_harness import API, JIANSHE, MINZHENG, serve_api
from tests.support import photo_bytes

RESIDENT = "o_resident_media_000000001"
AMR = b"#!AMR\n" + bytes(range(256))
MAX_UPLOAD = 50_000


@pytest.fixture
async def api(settings, store, fake_classifier):
    settings = settings.with_overrides(media={"fetch_poll_seconds": 0.05, "max_upload_bytes": MAX_UPLOAD})
    async with serve_api(settings, store, fake_classifier, background=True) as api:
        yield api


def resident(api) -> Simulator:
    wechat = api.app.ctx.settings.wechat
    return Simulator(api.base, wechat.token, RESIDENT, appid=wechat.appid)


async def wait_for_media(order_id: int, count: int, seconds: float = 15.0) -> list[models.Media]:
    """The order's media once the background loop has settled each (stored or failed)."""
    for _ in range(int(seconds / 0.05)):
        rows = await models.Media.filter(order_id=order_id).order_by("id")
        if len(rows) == count and all(row.status != "pending" for row in rows):
            return rows
        await asyncio.sleep(0.05)
    raise AssertionError("the media were not downloaded in time")


async def report_with_photo(api, media_id: str, data: bytes, gone: bool = False) -> models.Order:
    """A photo, then the report it belongs to; `gone`: WeChat has already forgotten the photo, id and PicUrl."""
    simulator = resident(api)
    pic_url = api.wechat.add_media(media_id, data)
    if gone:
        api.wechat.forget(media_id, picture=True)
    await simulator.send_async({**simulator.image_message(media_id), "PicUrl": pic_url}, api.client)  # held
    await simulator.send_async(simulator.text_message("村口的路灯坏了一个星期了"), api.client)
    return await models.Order.filter(resident__openid=RESIDENT).order_by("-id").first()


async def upload(api, openid: str, data: bytes, name: str = "scene.jpg", kind: str = "image/jpeg") -> httpx.Response:
    return await api.client.post(f"{API}/media", headers=await api.headers(openid), files={"file": (name, data, kind)})


async def test_a_residents_photo_outlives_wechat_and_reaches_only_those_who_may_see_the_order(api):
    jpeg = photo_bytes()
    order = await report_with_photo(api, "m-lamp", jpeg)
    [stored] = await wait_for_media(order.id, 1)
    assert stored.status == "stored"
    api.wechat.forget("m-lamp", picture=True)  # three days later

    detail = (await api.get(JIANSHE, f"/orders/{order.number}")).json()
    [photo] = detail["photos"]
    assert {key: photo[key] for key in ("id", "source", "kind", "status", "status_label", "media_id", "size")} == {
        "id": stored.id, "source": "resident", "kind": "image", "status": "stored", "status_label": "已保存",
        "media_id": "m-lamp", "size": len(jpeg)}
    assert photo["url"].startswith(f"{api.base}/api/v1/media/{stored.id}?expires=")
    async with httpx.AsyncClient() as browser:  # no token: the signed link alone, as an <image> tag asks
        answer = await browser.get(photo["url"])
        assert answer.status_code == 200 and answer.content == jpeg
        assert answer.headers["content-type"] == "image/jpeg" and answer.headers["x-content-type-options"] == "nosniff"
        other_id = photo["url"].replace(f"/media/{stored.id}?", f"/media/{stored.id + 1}?")
        tampered = photo["url"][:-1] + ("0" if photo["url"][-1] != "0" else "1")
        for refused in (other_id, tampered):
            answer = await browser.get(refused)
            assert answer.status_code == 403 and answer.json()["error"]["code"] == "media_link_invalid"
        assert (await browser.get(f"{api.base}{API}/media/{stored.id}")).status_code == 401  # no token, no link

    assert (await api.get(JIANSHE, f"/media/{stored.id}")).content == jpeg  # the handling department's token
    refused = await api.get(MINZHENG, f"/media/{stored.id}")
    assert refused.status_code == 404 and refused.json()["error"]["message"] == "没有找到这个文件"
    own = (await api.get(RESIDENT, f"/orders/{order.number}")).json()  # the resident, their own order
    assert (await api.client.get(own["photos"][0]["url"])).content == jpeg
    assert (await api.get(RESIDENT, f"/media/{stored.id}")).content == jpeg


async def test_a_voice_report_keeps_the_voice_as_evidence(api):
    simulator = resident(api)
    voice = simulator.voice_message("小区门口的路灯不亮了")
    api.wechat.add_media(voice["MediaId"], AMR, "audio/amr")
    await simulator.send_async(voice, api.client)
    order = await models.Order.filter(resident__openid=RESIDENT).order_by("-id").first()
    [row] = await wait_for_media(order.id, 1)
    [photo] = (await api.get(JIANSHE, f"/orders/{order.number}")).json()["photos"]
    assert (photo["kind"], photo["source"], photo["status"], photo["media_id"], photo["content_type"]) == (
        "voice", "resident", "stored", voice["MediaId"], "audio/amr")
    assert (await api.client.get(photo["url"])).content == AMR


async def test_a_photo_that_could_not_be_saved_says_so_on_the_order_and_alerts_nobody(api):
    order = await report_with_photo(api, "m-gone", photo_bytes(), gone=True)
    [failed] = await wait_for_media(order.id, 1)
    assert (failed.status, failed.attempts) == ("failed", 1)  # nothing left to fetch: no retry either
    [photo] = (await api.get(JIANSHE, f"/orders/{order.number}")).json()["photos"]
    assert (photo["id"], photo["status"], photo["status_label"], photo["url"]) == (failed.id, "failed", "照片未能保存",
                                                                                   None)
    await asyncio.sleep(0.3)  # the outbox loop has run meanwhile: a lost photo is no undelivered message
    assert await models.Outbox.filter(kind=ALERT_KIND).count() == 0


async def test_staff_upload_photos_and_name_them_in_progress_and_resolve(api):
    number = await api.submit("村口的路灯坏了", openid=RESIDENT)
    assert (await api.post(JIANSHE, f"/orders/{number}/accept")).status_code == 200
    before, after = await upload(api, JIANSHE, photo_bytes()), await upload(api, JIANSHE, photo_bytes(fmt="PNG"), "a.png")
    assert before.status_code == 201 and after.status_code == 201, before.text
    assert set(before.json()) == {"id", "url", "content_type", "size", "sha256"}
    assert (await api.client.get(after.json()["url"])).content == photo_bytes(fmt="PNG")
    ids = before.json()["id"], after.json()["id"]
    foreign = await upload(api, MINZHENG, photo_bytes((5, 5, 5)))

    refused = await api.post(JIANSHE, f"/orders/{number}/progress", {"note": "到现场", "photos": [foreign.json()["id"]]})
    assert refused.status_code == 422 and "不是您上传的" in refused.json()["error"]["message"]
    for_resident = {"note": "到现场", "photos": [ids[0]], "notify_resident": True}  # the resident sees its photo
    assert (await api.post(JIANSHE, f"/orders/{number}/progress", for_resident)).status_code == 200
    resolved = await api.post(JIANSHE, f"/orders/{number}/resolve", {"result": "已更换灯泡", "photos": [ids[1]]})
    assert resolved.status_code == 200, resolved.text
    listed = [(photo["id"], photo["source"], photo["status"]) for photo in resolved.json()["photos"]]
    assert listed == [(ids[0], "progress", "stored"), (ids[1], "resolve", "stored")]
    own = (await api.get(RESIDENT, f"/orders/{number}")).json()["photos"]
    assert [(await api.client.get(photo["url"])).status_code for photo in own] == [200, 200]


@pytest.mark.parametrize(("send", "status", "code", "message"), [
    ({"files": {"file": ("x.jpg", b"<html>hello</html>", "image/jpeg")}}, 415, "unsupported_media_type",
     "只能上传 JPEG、PNG、WebP、HEIC、HEIF 格式的照片"),
    ({"files": {"file": ("big.jpg", b"\xff\xd8\xff" + b"\x00" * MAX_UPLOAD, "image/jpeg")}}, 413, "media_too_large",
     "照片太大了"),
    ({"files": {"photo": ("x.jpg", photo_bytes(), "image/jpeg")}}, 422, "invalid_input", "没有收到照片"),
    ({"json": {"file": "aGVsbG8="}}, 415, "unsupported_media_type", "请用 multipart/form-data 上传照片"),
])
async def test_an_upload_that_is_no_photo_or_too_large_is_refused_clearly_and_keeps_nothing(api, send, status, code,
                                                                                          message):
    answer = await api.client.post(f"{API}/media", headers=await api.headers(JIANSHE), **send)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == code and message in answer.json()["error"]["message"]
    assert await models.Media.all().count() == 0


async def test_residents_do_not_upload(api):
    await api.submit("村口的路灯坏了", openid=RESIDENT)
    answer = await upload(api, RESIDENT, photo_bytes())
    assert answer.status_code == 403 and await models.Media.all().count() == 0
