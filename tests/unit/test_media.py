"""Evidence without I/O: the media URL and its check at start, the key layout, the type read from the bytes, the
signed links, the rows a report's photos and voice become, and how WeChat's answers become retry or gone."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from api import media_links
from bot.media_source import WeChatMedia
from bot.wechat_api import WeChatAPIError, WeChatUnavailable
from orders.config import ConfigError, load_settings
from orders.evidence import UPLOAD_TYPES, resident_media_rows, sniff
from orders.media_fetch import FetchFailed, MediaGone
from orders.media_store import LocalLocation, S3Location, checked_key, content_key, parse_media_url
from tests.support import photo_bytes

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=timezone.utc)
DIGEST = "ab" + "cd" + "0" * 60


def settings(**env: str):
    return load_settings(env={"SIDAN_ENV": "test", **env})


# ---------------------------------------------------------------------------------------------- the URL
def test_a_folder_or_a_file_url_is_the_local_store():
    assert parse_media_url("var/media") == LocalLocation(Path("var/media"))
    assert parse_media_url("file:///srv/sidan/media") == LocalLocation(Path("/srv/sidan/media"))


def test_an_s3_url_names_bucket_prefix_endpoint_and_credentials():
    location = parse_media_url("s3://KEY:s%2Fecret@evidence/sidan/prod?endpoint=http://127.0.0.1:9000/&region=cn-1")
    assert location == S3Location(bucket="evidence", prefix="sidan/prod", endpoint="http://127.0.0.1:9000",
                                  region="cn-1", access_key="KEY", secret_key="s/ecret", addressing="path")
    assert location.full_key(content_key(DIGEST)) == f"sidan/prod/ab/cd/{DIGEST}"
    bare = parse_media_url("s3://evidence?addressing=virtual")
    assert (bare.prefix, bare.endpoint, bare.access_key, bare.addressing) == ("", None, None, "virtual")
    assert bare.full_key(content_key(DIGEST)) == f"ab/cd/{DIGEST}"


@pytest.mark.parametrize(("url", "why"), [
    ("", "must name a folder"),
    ("ftp://host/media", "unknown scheme 'ftp'"),
    ("file://", "file:// needs a path"),
    ("s3:///prefix", "needs a bucket name"),
    ("s3://Evidence_Bucket/x", "needs a bucket name"),
    ("s3://evidence?endpoint=minio:9000", "endpoint must start with http"),
    ("s3://evidence?bucket=other", "unknown s3 parameter(s) bucket"),
    ("s3://evidence?addressing=sideways", "addressing must be one of"),
    ("s3://KEY@evidence", "credentials in the URL need both parts"),
])
def test_a_bad_media_url_says_what_is_wrong(url, why):
    with pytest.raises(ValueError, match=why.replace("(", r"\(").replace(")", r"\)")):
        parse_media_url(url)


def test_the_app_refuses_to_start_on_a_bad_media_url_naming_key_and_variable():
    with pytest.raises(ConfigError) as refused:
        settings(SIDAN_MEDIA_URL="ftp://host/media")
    assert "config key media.url (SIDAN_MEDIA_URL)" in str(refused.value) and "ftp" in str(refused.value)
    with pytest.raises(ConfigError, match=r"media.max_upload_bytes \(SIDAN_MEDIA_MAX_UPLOAD_BYTES\)"):
        settings(SIDAN_MEDIA_MAX_UPLOAD_BYTES="0")


def test_the_public_url_is_a_base_without_a_trailing_slash():
    assert settings().app.public_url == "http://127.0.0.1:8000"
    assert settings(SIDAN_APP_PUBLIC_URL="https://sidan.example.gov.cn/").app.public_url == \
        "https://sidan.example.gov.cn"
    for bad in ("sidan.example.gov.cn", "https://x.cn/?a=1"):
        with pytest.raises(ConfigError, match=r"app.public_url \(SIDAN_APP_PUBLIC_URL\)"):
            settings(SIDAN_APP_PUBLIC_URL=bad)


# ---------------------------------------------------------------------------------------------- keys and types
def test_keys_are_made_from_the_sha256_two_folders_deep_and_nothing_else_is_a_key():
    assert content_key(DIGEST) == f"ab/cd/{DIGEST}"
    with pytest.raises(ValueError):
        content_key("../../etc/passwd")
    for key in ("../x", "/etc/passwd", f"ab/cd/{DIGEST}/..", "ab/cd/" + "g" * 64):
        with pytest.raises(ValueError):
            checked_key(key)


@pytest.mark.parametrize(("fmt", "mime"), [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")])
def test_the_type_is_read_from_the_bytes(fmt, mime):
    assert sniff(photo_bytes(fmt=fmt)) == mime
    assert mime in UPLOAD_TYPES


def test_heic_and_amr_are_known_and_text_or_gif_are_no_photo_to_upload():
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 32
    assert sniff(heic) == "image/heic" and "image/heic" in UPLOAD_TYPES
    assert sniff(b"#!AMR\n" + b"\x00" * 32) == "audio/amr"
    assert sniff(b"<html><script>alert(1)</script></html>") is None
    assert sniff(b"") is None
    assert sniff(photo_bytes(fmt="GIF")) not in UPLOAD_TYPES


# ---------------------------------------------------------------------------------------------- signed links
def test_a_signed_link_is_absolute_on_the_public_base_and_opens_only_its_medium_until_it_expires():
    config = settings(SIDAN_APP_PUBLIC_URL="https://sidan.example.gov.cn")
    url = media_links.signed_url(config, 42, NOW)
    assert url.startswith("https://sidan.example.gov.cn/api/v1/media/42?expires=")
    query = dict(part.split("=") for part in url.split("?", 1)[1].split("&"))
    expires, sig = query["expires"], query["sig"]
    assert int(expires) % media_links.ROUND_SECONDS == 0
    assert NOW + timedelta(minutes=60) <= datetime.fromtimestamp(int(expires), timezone.utc) \
        < NOW + timedelta(minutes=65)
    assert media_links.verify(config, 42, expires, sig, NOW)
    later = media_links.signed_url(config, 42, NOW + timedelta(seconds=10))
    assert media_links.signed_url(config, 42, NOW + timedelta(seconds=250)) == later  # same answer: the cache holds
    assert not media_links.verify(config, 43, expires, sig, NOW)  # another medium
    assert not media_links.verify(config, 42, str(int(expires) + 300), sig, NOW)  # a longer life
    assert not media_links.verify(config, 42, expires, sig, NOW + timedelta(minutes=66))  # expired
    assert not media_links.verify(config, 42, expires, sig[:-1] + ("0" if sig[-1] != "0" else "1"), NOW)
    for bad_expiry in (None, "", "-5", "1e9", "9" * 13):
        assert not media_links.verify(config, 42, bad_expiry, sig, NOW)
    assert not media_links.verify(config, 42, expires, None, NOW)
    other_secret = settings(SIDAN_AUTH_JWT_SECRET="another-development-secret-of-32-chars!")
    assert not media_links.verify(other_secret, 42, expires, sig, NOW)  # a new JWT secret voids every link


# ---------------------------------------------------------------------------------------------- resident media
def test_a_reports_photos_and_voice_become_pending_downloads_of_its_order():
    rows = resident_media_rows(7, [{"media_id": "m1", "url": "http://pic/1"}, {"media_id": None, "url": "http://p/2"},
                                   {"media_id": "", "url": None}], "voice-1", NOW)
    assert [(r["kind"], r["wechat_media_id"], r.get("pic_url")) for r in rows] == [
        ("image", "m1", "http://pic/1"), ("image", None, "http://p/2"), ("voice", "voice-1", None)]
    assert all(r["order_id"] == 7 and r["source"] == "resident" and r["status"] == "pending"
               and r["next_attempt_at"] == NOW for r in rows)
    assert resident_media_rows(7, [], None, NOW) == []


# ---------------------------------------------------------------------------------------------- WeChat as source
class Client:
    """What WeChatMedia asks of the WeChat client, answering as told."""

    def __init__(self, media_get=None, download=None) -> None:
        self.answers = {"media_get": media_get, "download": download}
        self.calls: list[str] = []

    async def _answer(self, name: str):
        self.calls.append(name)
        answer = self.answers[name]
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def media_get(self, media_id: str):
        return await self._answer("media_get")

    async def download(self, url: str):
        return await self._answer("download")


GONE = WeChatAPIError(40007, "invalid media_id")


@pytest.mark.parametrize(("media_get", "download", "outcome", "calls"), [
    ((b"jpeg", "image/jpeg"), None, b"jpeg", ["media_get"]),
    (GONE, (b"pic", "image/jpeg"), b"pic", ["media_get", "download"]),  # the PicUrl when the id is gone
    (WeChatUnavailable("down"), (b"pic", "image/jpeg"), b"pic", ["media_get", "download"]),
    (GONE, WeChatAPIError(404, "PicUrl answers nothing"), MediaGone, ["media_get", "download"]),
    (GONE, WeChatUnavailable("HTTP 502"), FetchFailed, ["media_get", "download"]),  # the picture may come back
    (WeChatAPIError(45009, "api freq out of limit"), WeChatAPIError(404, "-"), FetchFailed, ["media_get", "download"]),
])
async def test_wechat_answers_become_bytes_a_retry_or_gone(media_get, download, outcome, calls):
    client = Client(media_get, download)
    source = WeChatMedia(client)
    if isinstance(outcome, bytes):
        assert (await source.fetch("m1", "http://pic/1")).data == outcome
    else:
        with pytest.raises(outcome) as raised:
            await source.fetch("m1", "http://pic/1")
        assert outcome is MediaGone or not isinstance(raised.value, MediaGone)
    assert client.calls == calls


async def test_a_voice_has_no_picture_a_forgotten_one_is_gone_and_a_medium_without_either_too():
    with pytest.raises(MediaGone):
        await WeChatMedia(Client(GONE)).fetch("voice-1", None)
    with pytest.raises(FetchFailed) as raised:
        await WeChatMedia(Client(WeChatUnavailable("timeout"))).fetch("voice-1", None)
    assert not isinstance(raised.value, MediaGone)
    with pytest.raises(MediaGone):
        await WeChatMedia(Client()).fetch(None, None)


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data", "http://127.0.0.2:8000/admin",
                                 "file:///etc/passwd", "https://mmbiz.qpic.cn.evil.example/x.jpg"])
async def test_a_picurl_off_wechats_image_servers_is_never_fetched(url):
    from bot.wechat_api import WeChatClient
    from orders.store import MemoryStore

    client = WeChatClient(settings(SIDAN_WECHAT_API_BASE="http://127.0.0.1:9"), MemoryStore())
    try:
        assert client._picture_host("http://mmbiz.qpic.cn/mmbiz_jpg/abc/0") and client._picture_host(
            "http://127.0.0.1:9/mmbiz/m1.jpg")
        with pytest.raises(WeChatAPIError) as refused:
            await client.download(url)
        assert refused.value.errcode == 404  # as a picture that is not there: the medium is gone, not retried
    finally:
        await client.close()
