"""Home-feed rules: cursor handling, one read statement, rendering of list items."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row

from core.errors import ValidationFailed
from core.pagination import decode_cursor, encode_cursor
from skills.activity_feed import repository as repo

if TYPE_CHECKING:
    from core.kernel import Kernel

COVER_URL_SECONDS = 900
"""Lifetime of an item's signed ``cover_url``, as music-streaming-basic signs its own lists."""


def decode(cursor: str | None) -> repo.Position | None:
    """The keyset position of a cursor we issued, else 422 ``INVALID_CURSOR``."""
    values = decode_cursor(cursor, arity=2)
    if values is None:
        return None
    try:
        return datetime.fromisoformat(values[0]), uuid.UUID(values[1])
    except (TypeError, ValueError):
        raise ValidationFailed(
            "The cursor is not valid for this list.", code="INVALID_CURSOR"
        ) from None


def encode(position: repo.Position) -> str:
    return encode_cursor([position[0].isoformat(), str(position[1])])


async def list_items(kernel: Kernel, rows: Sequence[Row[Any]]) -> list[dict[str, Any]]:
    """``TrackRead``-shaped dicts for :func:`repo.item_columns` rows: a signed, short-lived
    cover URL (never stored) and ``[]`` for a track without tags. The router's response model
    validates them once; building models here too would validate every item twice."""
    storage = kernel.storage
    fields = rows[0]._fields if rows else ()
    items = []
    for row in rows:
        item = dict(zip(fields, row, strict=True))  # a third of what Row._asdict() costs
        cover_key = item.pop("cover_key")
        item["cover_url"] = (
            await storage.presign_get(cover_key, expires_in=COVER_URL_SECONDS)
            if cover_key
            else None
        )
        if item["tags"] is None:
            item["tags"] = []
        items.append(item)
    return items


async def home_feed(
    kernel: Kernel, user_id: uuid.UUID, *, cursor: str | None, limit: int
) -> dict[str, Any]:
    """Listable tracks of the accounts ``user_id`` follows, newest first: a ``Page[TrackRead]``
    as a plain dict.

    One row more than asked tells whether a next page exists without a count; the cursor is
    the last item's ``(created_at, id)``, so new uploads never shift later pages. Read live
    (one statement, tags included): unfollows, bans and hides show on the next request.
    """
    after = decode(cursor)
    async with kernel.db.autocommit() as conn:
        rows = await repo.page(conn, user_id, after=after, limit=limit + 1)
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode((rows[-1].created_at, rows[-1].id))
    return {"items": await list_items(kernel, rows), "next_cursor": next_cursor}
