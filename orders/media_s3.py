"""The media store on S3-compatible object storage (AWS S3, MinIO, Aliyun OSS, Tencent COS), through boto3.

boto3 (pinned in pyproject.toml) is AWS's own S3 client, the best kept there is, and it speaks to every
S3-compatible service given an endpoint and an addressing style. Its calls block, so each one runs in a worker
thread (a boto3 client may be shared between threads); a photo is a few hundred kB, and a thread per call costs
little next to the network. (aiobotocore is async but pins exact botocore releases, which fights boto3 and moto
for the same package; minio-py blocks as boto3 does.)
"""
from __future__ import annotations

import asyncio
import base64
import hashlib

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from orders.media_store import MediaMissing, MediaStoreError, S3Location, checked_key

MISSING_CODES = {"NoSuchKey", "404", "NotFound"}


class S3MediaStore:
    kind = "s3"

    def __init__(self, location: S3Location) -> None:
        self.location = location
        config = Config(
            s3={"addressing_style": location.addressing},
            # boto3 ≥ 1.36 adds CRC checksums (and chunked uploads) to every request by default, which MinIO, OSS
            # and COS refuse or ignore: only when an operation requires one; Content-MD5 guards each upload instead.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=5,
            read_timeout=30,
        )
        self._client = boto3.session.Session().client(
            "s3", endpoint_url=location.endpoint, region_name=location.region or "us-east-1",
            aws_access_key_id=location.access_key, aws_secret_access_key=location.secret_key, config=config)

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        md5 = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
        await self._call("put_object", Key=self._key(key), Body=data, ContentType=content_type, ContentMD5=md5)

    async def get(self, key: str) -> bytes:
        answer = await self._call("get_object", Key=self._key(key))
        return await asyncio.to_thread(answer["Body"].read)

    async def delete(self, key: str) -> None:
        await self._call("delete_object", Key=self._key(key))

    async def close(self) -> None:
        self._client.close()

    def _key(self, key: str) -> str:
        return self.location.full_key(checked_key(key))

    async def _call(self, operation: str, **arguments):
        call = getattr(self._client, operation)
        try:
            return await asyncio.to_thread(call, Bucket=self.location.bucket, **arguments)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in MISSING_CODES:
                raise MediaMissing(arguments.get("Key", "")) from None
            raise MediaStoreError(f"{operation} {self.location.bucket}: {code or exc}") from exc
        except BotoCoreError as exc:  # connection refused, timeouts, no credentials
            raise MediaStoreError(f"{operation} {self.location.bucket}: {type(exc).__name__}: {exc}") from exc
