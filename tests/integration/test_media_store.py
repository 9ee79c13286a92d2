"""The media store on both backends: local files, and S3 against a real S3-compatible server (moto's server mode on
loopback, started by the tests)."""
from __future__ import annotations

import asyncio
import hashlib
import os

import pytest

from orders.media_store import LocalMediaStore, MediaMissing, MediaStoreError, content_key, open_media_store
from tests.support import photo_bytes


async def test_bytes_go_in_and_come_out_by_their_key_and_are_forgotten_on_delete(media_url):
    store = open_media_store(media_url)
    try:
        data = photo_bytes()
        key = content_key(hashlib.sha256(data).hexdigest())
        with pytest.raises(MediaMissing):
            await store.get(key)
        await store.put(key, data, "image/jpeg")
        await store.put(key, data, "image/jpeg")  # the same bytes again: still one copy, unchanged
        assert await store.get(key) == data
        other = photo_bytes((10, 200, 10), "PNG")
        other_key = content_key(hashlib.sha256(other).hexdigest())
        await asyncio.gather(store.put(other_key, other, "image/png"), store.put(key, data, "image/jpeg"))
        assert await store.get(other_key) == other and await store.get(key) == data
        await store.delete(key)
        with pytest.raises(MediaMissing):
            await store.get(key)
        await store.delete(key)  # gone already: nothing happens
        assert await store.get(other_key) == other
        with pytest.raises(ValueError):
            await store.get("../../etc/passwd")
    finally:
        await store.close()


async def test_the_s3_store_keeps_objects_under_its_prefix_with_their_type(s3_media_url, moto_endpoint):
    import boto3

    store = open_media_store(s3_media_url)
    data = photo_bytes()
    digest = hashlib.sha256(data).hexdigest()
    await store.put(content_key(digest), data, "image/jpeg")
    await store.close()
    bucket = s3_media_url.split("@", 1)[1].split("/", 1)[0]
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1", aws_access_key_id="test",
                          aws_secret_access_key="test")
    try:
        answer = client.get_object(Bucket=bucket, Key=f"evidence/{digest[:2]}/{digest[2:4]}/{digest}")
        assert answer["ContentType"] == "image/jpeg" and answer["Body"].read() == data
    finally:
        client.close()


async def test_a_bucket_that_is_not_there_is_a_store_error_not_a_missing_medium(moto_endpoint):
    store = open_media_store(f"s3://test:test@no-such-bucket-here?endpoint={moto_endpoint}")
    try:
        with pytest.raises(MediaStoreError):
            await store.put(content_key("0" * 64), b"x", "image/jpeg")
    finally:
        await store.close()


async def test_a_local_write_is_whole_or_nothing(tmp_path, monkeypatch):
    store = LocalMediaStore(tmp_path / "media")
    data = photo_bytes()
    key = content_key(hashlib.sha256(data).hexdigest())

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(MediaStoreError, match="No space left"):
        await store.put(key, data, "image/jpeg")
    monkeypatch.undo()
    assert [path for path in (tmp_path / "media").rglob("*") if path.is_file()] == []  # no half file, no temp
    await store.put(key, data, "image/jpeg")
    assert [path.name for path in (tmp_path / "media").rglob("*") if path.is_file()] == [key.rsplit("/", 1)[1]]
    assert store.path_of(key).read_bytes() == data
