"""Object storage: one async interface, two backends chosen by ``SOUNDHIVE_STORAGE``.

``local`` keeps files under ``<data_dir>/objects`` and serves them through the API's own
signed URLs (``core.storage.local_routes``); ``s3`` talks to AWS S3, MinIO or any
S3-compatible store with presigned URLs, so the API never proxies audio bytes. Skills use
``kernel.storage`` and never know which one is configured. See docs/storage.md.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from core.storage.errors import (
    InvalidObjectKey,
    ObjectExists,
    ObjectNotFound,
    StorageUnavailable,
)
from core.storage.keys import validate_key

if TYPE_CHECKING:
    from core.settings import Settings

__all__ = [
    "InvalidObjectKey",
    "ObjectExists",
    "ObjectInfo",
    "ObjectNotFound",
    "PresignedRequest",
    "Storage",
    "StorageUnavailable",
    "build_storage",
    "prepare_storage",
    "validate_key",
]

log = logging.getLogger("soundhive.storage")


@dataclass(frozen=True)
class PresignedRequest:
    """How a client sends bytes straight to storage: the URL, the verb and the exact headers
    it must send (``Content-Length`` must equal the declared size; HTTP clients set it)."""

    url: str
    method: str
    headers: dict[str, str] = field(default_factory=dict)
    expires_in: int = 0


@dataclass(frozen=True)
class ObjectInfo:
    """An object's metadata. ``etag`` is unquoted (an MD5 hex digest for single-part
    uploads); ``content_type`` is ``None`` in S3 listings, which do not carry it."""

    key: str
    size: int
    content_type: str | None
    etag: str | None
    last_modified: datetime | None


class Storage(Protocol):
    """What skills may do with objects. Backend failures raise ``StorageUnavailable``
    (503); a missing object is ``None`` from ``head`` and ``ObjectNotFound`` elsewhere."""

    backend: str

    async def presign_put(
        self, key: str, *, content_type: str, content_length: int, expires_in: int | None = None
    ) -> PresignedRequest:
        """A one-shot upload URL bound to this key, content type and exact length. Uploads
        through it are write-once: a finished object is never replaced."""

    async def presign_get(
        self, key: str, *, expires_in: int | None = None, download_name: str | None = None
    ) -> str:
        """A short-lived download/stream URL (byte ranges work on both backends)."""

    async def head(self, key: str) -> ObjectInfo | None: ...

    async def read_range(self, key: str, start: int, end_inclusive: int) -> bytes:
        """Bytes ``start..end_inclusive`` (fewer at the end of the object, ``b""`` past it or
        when ``end_inclusive < start``); meant for sniffing headers, so keep ranges small."""

    async def download_to(self, key: str, path: Path) -> int:
        """Stream the object into ``path`` (written atomically); returns the byte count."""

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> ObjectInfo:
        """Server-side write of a small object (cover thumbnails); replaces an existing one."""

    async def delete(self, key: str) -> None:
        """Remove the object; deleting a missing object is not an error."""

    def iter_objects(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Every object whose key starts with ``prefix`` (for orphan clean-up); the order is
        the key order on S3 and unspecified on ``local``."""

    async def ensure_ready(self) -> None:
        """Make the store usable: create the folder (local) or, outside prod, the bucket."""

    async def check(self) -> None:
        """Readiness probe: raise ``StorageUnavailable`` when the store cannot be used."""

    async def aclose(self) -> None: ...


def build_storage(settings: Settings) -> Storage:
    """The backend ``settings.storage`` names. Nothing connects until first use."""
    if settings.storage == "s3":
        try:
            from core.storage.s3 import S3Storage
        except ImportError as exc:  # pragma: no cover - depends on the installed extras
            raise RuntimeError(
                "SOUNDHIVE_STORAGE=s3 needs aioboto3: reinstall soundhive with its dependencies"
            ) from exc
        return S3Storage(settings)
    from core.storage.local import LocalStorage

    return LocalStorage(settings)


async def prepare_storage(storage: Storage) -> None:
    """Start-up hook: ``ensure_ready`` without blocking start-up on an outage — the API still
    serves what does not need storage, and ``/readyz`` reports the store as not ok."""
    try:
        await storage.ensure_ready()
    except StorageUnavailable:
        log.warning("object storage (%s) is not ready at start-up", storage.backend)
