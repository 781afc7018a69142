"""Home-feed rules: cursor handling, one read statement, rendering of list items."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from core.errors import ValidationFailed
from core.pagination import decode_cursor, encode_cursor
from skills.activity_feed import repository as repo
from skills.music_streaming_basic.api import list_items

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
