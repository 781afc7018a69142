"""The public face of ``tag-search-discovery`` for skills that declare it in ``requires``.

- :func:`trending_track_ids` — listable tracks by trending score (recommendation fallbacks);
- :func:`listable_reads` — API items for ids, in order, with private, unlisted, hidden and
  banned owners' tracks dropped at read time (for cached id lists).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from skills.music_streaming_basic.api import TrackRead, list_items
from skills.tag_search_discovery import repository as _repo

if TYPE_CHECKING:
    from core.kernel import Kernel

__all__ = ["listable_reads", "trending_track_ids"]


async def trending_track_ids(
    session: AsyncSession, *, limit: int, exclude_owner: uuid.UUID | None = None
) -> list[uuid.UUID]:
    """Up to ``limit`` listable tracks with a positive trending score, best first."""
    rows = await _repo.trending_ids(session, after=None, limit=limit, exclude_owner=exclude_owner)
    return [track_id for track_id, _ in rows]


async def listable_reads(
    kernel: Kernel, session: AsyncSession, ids: Sequence[uuid.UUID]
) -> list[TrackRead]:
    """Tracks anyone may list among ``ids``, in the given order (one statement, tags
    included, on your session)."""
    rows = await _repo.listable_by_ids(session, ids)
    return [TrackRead.model_validate(item) for item in await list_items(kernel, rows)]
