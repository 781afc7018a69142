"""Home-feed rules: cursor handling, one read transaction, rendering through music-streaming."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import ValidationFailed
from core.pagination import Page, decode_cursor, encode_cursor
from skills.activity_feed import repository as repo
from skills.music_streaming_basic.api import TrackRead, track_reads

if TYPE_CHECKING:
    from core.kernel import Kernel


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


async def home_feed(
    kernel: Kernel, session: AsyncSession, user_id: uuid.UUID, *, cursor: str | None, limit: int
) -> Page[TrackRead]:
    """Listable tracks of the accounts ``user_id`` follows, newest first.

    One row more than asked tells whether a next page exists without a count; the cursor is
    the last item's ``(created_at, id)``, so new uploads never shift later pages.
    """
    after = decode(cursor)
    async with session.begin():
        rows = await repo.page(session, user_id, after=after, limit=limit + 1)
        items = await track_reads(kernel, session, rows[:limit])
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode((last.created_at, last.id))
    return Page[TrackRead](items=items, next_cursor=next_cursor)
