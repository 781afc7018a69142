"""The public face of ``play-history-tracking`` for skills that declare it in ``requires``.

- recommendations: :func:`recent_track_ids` — what a listener played lately;
- trending: :func:`windowed_play_counts` (a dict) or :func:`windowed_play_counts_query` (a
  ``SELECT track_id, plays`` to join or aggregate in SQL) — counted plays per track in a
  time window, anonymous plays included.

Counted plays also emit ``track.played`` ``{track_id, user_id|null, counted, played_ms}`` for
subscribers. Functions take *your* session and never commit. Ids are not filtered for
visibility: join with ``music-streaming-basic``'s ``listable_condition()`` before showing
them to anyone.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from skills.play_history_tracking import repository as _repo
from skills.play_history_tracking.models import PlayHistory

__all__ = [
    "PlayHistory",
    "recent_track_ids",
    "windowed_play_counts",
    "windowed_play_counts_query",
]


async def recent_track_ids(
    session: AsyncSession, user_id: uuid.UUID, limit: int = 50, *, counted_only: bool = True
) -> list[uuid.UUID]:
    """Distinct tracks the listener played lately, most recent first.

    Looks at the listener's last ``20 × limit`` plays (at least 500) only, so the cost does
    not grow with a long history. ``counted_only`` skips plays too short to count (skips are
    not interest).
    """
    if limit <= 0:
        return []
    return await _repo.recent_track_ids(
        session, user_id, limit, counted_only=counted_only, scan=max(500, 20 * limit)
    )


def windowed_play_counts_query(since: datetime, until: datetime | None = None) -> Select[Any]:
    """``SELECT track_id, plays`` over counted plays in ``[since, until)``, grouped by track
    (served by a partial index on ``(played_at, track_id) WHERE counted``)."""
    return _repo.windowed_counts(since, until)


async def windowed_play_counts(
    session: AsyncSession,
    since: datetime,
    until: datetime | None = None,
    *,
    track_ids: Iterable[uuid.UUID] | None = None,
) -> dict[uuid.UUID, int]:
    """Counted plays per track in ``[since, until)``; tracks without plays are absent.
    ``track_ids`` restricts the answer to those tracks."""
    query = _repo.windowed_counts(since, until)
    if track_ids is not None:
        ids = list(track_ids)
        if not ids:
            return {}
        query = query.where(PlayHistory.track_id.in_(ids))  # type: ignore[attr-defined]
    return {track_id: int(plays) for track_id, plays in (await session.execute(query)).all()}
