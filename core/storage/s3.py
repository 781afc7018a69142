"""The ``s3`` backend (aioboto3): AWS S3, MinIO or any S3-compatible endpoint.

Credentials come from the standard AWS chain (``AWS_ACCESS_KEY_ID`` … or an instance
role); ``AWS_MAX_ATTEMPTS`` tunes retries. One aioboto3 session per kernel, and one client
per event loop that uses it — the API's loop, a Dramatiq worker's loop, a test's loop — so
connections are pooled without ever being shared across loops. ``aclose`` closes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aioboto3
import aiohttp
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from core.settings import Settings
from core.storage import ObjectInfo, PresignedRequest
from core.storage.errors import ObjectNotFound, storage_failure
from core.storage.keys import (
    check_length,
    content_disposition,
    expiry_seconds,
    validate_content_type,
    validate_key,
    validate_prefix,
)
from core.storage.memo import PresignMemo, rounded_expiry

DEV_BUCKET = "soundhive"
_CHUNK = 1024 * 1024


class S3Storage:
    backend = "s3"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.bucket = settings.s3_bucket or DEV_BUCKET
        self._session: Any = None
        self._clients: dict[asyncio.AbstractEventLoop, tuple[Any, AsyncExitStack]] = {}
        self._lock = threading.Lock()
        self._get_urls = PresignMemo()

    # -- clients -------------------------------------------------------------------------
    def _config(self) -> Config:
        return Config(
            signature_version="s3v4",
            # MinIO and most S3-compatible stores want path-style URLs; AWS picks its own.
            s3={"addressing_style": "path" if self.settings.s3_endpoint_url else "auto"},
            retries={"mode": "standard"},  # attempts: AWS_MAX_ATTEMPTS, default 3
            connect_timeout=3,
            read_timeout=20,
            max_pool_connections=50,
            # Only send/verify checksums S3 requires: older S3-compatible stores reject the
            # CRC headers newer botocore adds by default.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )

    async def _client(self) -> Any:
        loop = asyncio.get_running_loop()
        entry = self._clients.get(loop)
        if entry is not None:
            return entry[0]
        if self._session is None:
            self._session = aioboto3.Session()
        stack = AsyncExitStack()
        client = await stack.enter_async_context(
            self._session.client(
                "s3",
                endpoint_url=self.settings.s3_endpoint_url or None,
                region_name=self.settings.s3_region or None,
                config=self._config(),
            )
        )
        with self._lock:
            for other in [lp for lp in self._clients if lp.is_closed()]:
                del self._clients[other]  # its loop is gone; nothing left to await
            existing = self._clients.setdefault(loop, (client, stack))
        if existing[0] is not client:  # another task of this loop won the race
            await stack.aclose()
        return existing[0]

    async def aclose(self) -> None:
        """Close this loop's client here, other live loops' clients on their own loop."""
        current = asyncio.get_running_loop()
        with self._lock:
            entries, self._clients = list(self._clients.items()), {}
        for loop, (_, stack) in entries:
            with contextlib.suppress(Exception):
                if loop is current:
                    await stack.aclose()
                elif loop.is_running():
                    future = asyncio.run_coroutine_threadsafe(stack.aclose(), loop)
                    await asyncio.wait_for(asyncio.wrap_future(future), timeout=5)

    @contextlib.contextmanager
    def _guard(self, operation: str) -> Iterator[None]:
        """Every backend failure becomes ``StorageUnavailable`` (503) and is counted."""
        try:
            yield
        except (ClientError, BotoCoreError, aiohttp.ClientError, OSError) as exc:
            raise storage_failure(operation, exc) from exc

    # -- signed URLs ---------------------------------------------------------------------
    async def presign_put(
        self, key: str, *, content_type: str, content_length: int, expires_in: int | None = None
    ) -> PresignedRequest:
        validate_key(key)
        content_type = validate_content_type(content_type)
        check_length(content_length, self.settings.max_upload_bytes)
        seconds = expiry_seconds(expires_in, self.settings.presign_put_expires)
        params: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": key,
            "ContentType": content_type,
            "ContentLength": content_length,
        }
        headers = {"Content-Type": content_type}
        if self.settings.s3_write_once:
            params["IfNoneMatch"] = "*"
            headers["If-None-Match"] = "*"
        with self._guard("presign_put"):
            client = await self._client()
            url = await client.generate_presigned_url(
                "put_object", Params=params, ExpiresIn=seconds, HttpMethod="PUT"
            )
        return PresignedRequest(url=url, method="PUT", headers=headers, expires_in=seconds)

    async def presign_get(
        self, key: str, *, expires_in: int | None = None, download_name: str | None = None
    ) -> str:
        validate_key(key)
        seconds = expiry_seconds(expires_in, self.settings.presign_get_expires)
        expires_at = rounded_expiry(seconds)  # see core/storage/memo.py
        memo_key = (key, download_name or "", expires_at)
        cached = self._get_urls.get(memo_key)
        if cached is not None:
            return cached
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if download_name:
            params["ResponseContentDisposition"] = content_disposition(download_name)
        with self._guard("presign_get"):
            client = await self._client()
            url: str = await client.generate_presigned_url(
                "get_object", Params=params, ExpiresIn=max(1, expires_at - int(time.time()))
            )
        self._get_urls.put(memo_key, url, expires_at)
        return url

    # -- reads ---------------------------------------------------------------------------
    async def head(self, key: str) -> ObjectInfo | None:
        validate_key(key)
        with self._guard("head"):
            client = await self._client()
            try:
                response = await client.head_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if _status(exc) == 404:
                    return None
                raise
        return ObjectInfo(
            key=key,
            size=int(response["ContentLength"]),
            content_type=response.get("ContentType"),
            etag=_etag(response.get("ETag")),
            last_modified=_utc(response.get("LastModified")),
        )

    async def read_range(self, key: str, start: int, end_inclusive: int) -> bytes:
        validate_key(key)
        if start < 0:
            raise ValueError("read_range needs start >= 0")
        if end_inclusive < start:
            return b""  # an empty range, e.g. the first size - 1 bytes of an empty object
        with self._guard("read"):
            client = await self._client()
            try:
                response = await client.get_object(
                    Bucket=self.bucket, Key=key, Range=f"bytes={start}-{end_inclusive}"
                )
            except ClientError as exc:
                if _status(exc) == 404:
                    raise ObjectNotFound(f"No object {key!r}.") from None
                if _status(exc) == 416:
                    return b""  # the range starts past the end of the object
                raise
            body = response["Body"]
            async with body:  # ``as`` would yield the raw aiohttp response, unchecked
                data: bytes = await body.read()
        return data

    async def download_to(self, key: str, path: Path) -> int:
        validate_key(key)
        path = Path(path)
        with self._guard("download"):
            client = await self._client()
            try:
                response = await client.get_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if _status(exc) == 404:
                    raise ObjectNotFound(f"No object {key!r}.") from None
                raise
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
            written = 0
            try:
                body = response["Body"]
                with os.fdopen(fd, "wb") as out:
                    async with body:  # the wrapper checks Content-Length at the end
                        async for chunk in body.iter_chunks(_CHUNK):
                            await asyncio.to_thread(out.write, chunk)
                            written += len(chunk)
                    await asyncio.to_thread(out.flush)
                os.replace(tmp, path)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
        return written

    async def iter_objects(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        validate_prefix(prefix)
        with self._guard("list"):
            client = await self._client()
            paginator = client.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", ()):
                    yield ObjectInfo(
                        key=item["Key"],
                        size=int(item["Size"]),
                        content_type=None,
                        etag=_etag(item.get("ETag")),
                        last_modified=_utc(item.get("LastModified")),
                    )

    # -- writes --------------------------------------------------------------------------
    async def put_bytes(self, key: str, data: bytes, content_type: str) -> ObjectInfo:
        validate_key(key)
        content_type = validate_content_type(content_type)
        with self._guard("put"):
            client = await self._client()
            response = await client.put_object(
                Bucket=self.bucket, Key=key, Body=bytes(data), ContentType=content_type
            )
        return ObjectInfo(
            key=key,
            size=len(data),
            content_type=content_type,
            etag=_etag(response.get("ETag")),
            last_modified=datetime.now(UTC),
        )

    async def delete(self, key: str) -> None:
        validate_key(key)
        with self._guard("delete"):
            client = await self._client()
            try:
                await client.delete_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if _status(exc) != 404:
                    raise

    # -- lifecycle -----------------------------------------------------------------------
    async def ensure_ready(self) -> None:
        """Create the bucket when it is missing — outside prod only; prod buckets are made
        (with their policy, versioning and lifecycle rules) by the operator."""
        with self._guard("ensure_ready"):
            client = await self._client()
            try:
                await client.head_bucket(Bucket=self.bucket)
                return
            except ClientError as exc:
                if _status(exc) != 404 or self.settings.env == "prod":
                    raise
            params: dict[str, Any] = {"Bucket": self.bucket}
            region = client.meta.region_name
            if region and region != "us-east-1":
                params["CreateBucketConfiguration"] = {"LocationConstraint": region}
            try:
                await client.create_bucket(**params)
            except ClientError as exc:
                if _code(exc) != "BucketAlreadyOwnedByYou":
                    raise

    async def check(self) -> None:
        with self._guard("check"):
            client = await self._client()
            await client.head_bucket(Bucket=self.bucket)


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _etag(value: str | None) -> str | None:
    return value.strip('"') if value else None


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None
