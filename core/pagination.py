"""Cursor (keyset) pagination shared by every list endpoint: ``{"items": [...], "next_cursor"}``.

Cursors are opaque, URL-safe and carry a checksum, so garbage or edited cursors get a clear 422
instead of a database error (a cursor only names a position in a list the caller may already
read, so it is not a secret). Keyset pages cost the same at any depth, where OFFSET grows.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, Field

from core.errors import ValidationFailed

T = TypeVar("T")
MAX_LIMIT = 100

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size (1–100).")]
Cursor = Annotated[
    str | None,
    Query(max_length=512, description="Opaque cursor from the previous page's next_cursor."),
]


class Page(BaseModel, Generic[T]):
    """One page of a list; ``next_cursor`` is null on the last page."""

    items: list[T]
    next_cursor: str | None = Field(default=None, examples=[None])


_KEY = b"soundhive-cursor"


def encode_cursor(values: list[Any], *, secret: str = "") -> str:
    """Pack keyset values (timestamps as ISO strings, UUIDs as strings) into a cursor."""
    raw = json.dumps(values, separators=(",", ":"), default=str).encode()
    mac = hmac.new(_KEY + secret.encode(), raw, hashlib.sha256).digest()[:8]
    return base64.urlsafe_b64encode(mac + raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, *, arity: int, secret: str = "") -> list[Any] | None:
    """The keyset values of a cursor, or 422 ``INVALID_CURSOR`` if it was not issued by us."""
    if not cursor:
        return None
    try:
        blob = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        mac, raw = blob[:8], blob[8:]
        expected = hmac.new(_KEY + secret.encode(), raw, hashlib.sha256).digest()[:8]
        values = json.loads(raw) if hmac.compare_digest(mac, expected) else None
    except (ValueError, json.JSONDecodeError):
        values = None
    if not isinstance(values, list) or len(values) != arity:
        raise ValidationFailed("The cursor is not valid for this list.", code="INVALID_CURSOR")
    return values
