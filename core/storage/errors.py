"""Storage failures as domain errors, so every path renders an RFC 9457 problem.

An unreachable or failing backend is ``StorageUnavailable`` (503), never a 500; a missing
object is ``ObjectNotFound`` (404) — a fact about the data, not an outage.
"""

from __future__ import annotations

import logging
from typing import Any

from core import metrics
from core.errors import (
    BadRequest,
    Conflict,
    DomainError,
    Forbidden,
    NotFound,
    ServiceUnavailable,
)

log = logging.getLogger("soundhive.storage")


class StorageUnavailable(ServiceUnavailable):
    """The object store cannot be reached or failed; retrying later may succeed."""

    title = "Storage unavailable"

    def __init__(self, detail: str | None = None, **kw: Any) -> None:
        kw.setdefault("headers", {"Retry-After": "5"})
        super().__init__(detail or "Object storage is unavailable; try again shortly.", **kw)


class ObjectNotFound(NotFound):
    code, title = "OBJECT_NOT_FOUND", "Object not found"


class InvalidObjectKey(BadRequest):
    code, title = "INVALID_OBJECT_KEY", "Invalid object key"


class ObjectExists(Conflict):
    """Signed uploads are write-once: a finished object is never replaced through a URL."""

    code, title = "OBJECT_EXISTS", "Object already exists"


class InvalidSignature(Forbidden):
    code, title = "INVALID_SIGNATURE", "Invalid signature"


class SignatureExpired(Forbidden):
    code, title = "SIGNATURE_EXPIRED", "Signature expired"


class UploadIncomplete(BadRequest):
    code, title = "FILE_UPLOAD_FAILED", "Upload failed"


class RangeNotSatisfiable(DomainError):
    status, code, title = 416, "RANGE_NOT_SATISFIABLE", "Range not satisfiable"


def storage_failure(operation: str, exc: BaseException) -> StorageUnavailable:
    """Count and log a backend failure; the caller raises the returned error ``from exc``."""
    metrics.STORAGE_FAILURES.labels(operation).inc()
    log.warning("object storage %s failed: %s: %s", operation, type(exc).__name__, exc)
    return StorageUnavailable()
