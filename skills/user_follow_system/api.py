"""The public face of ``user-follow-system`` for other skills (declare
``requires=("user-follow-system",)``).

Home feed — tracks of the accounts the caller follows, filtered in SQL::

    from skills.user_follow_system.api import followee_ids_query

    stmt = select(Track).where(Track.owner_id.in_(followee_ids_query(me.id)))

Notification fan-out — every visible follower, in batches, resumable from a job::

    after = None
    while True:
        batch = await follower_ids(session, author_id, after=after, limit=500)
        ...  # notify batch.ids
        if batch.next_after is None:
            break
        after = batch.next_after

Events (through the outbox, same transaction as the change): ``user.followed`` and
``user.unfollowed`` with ``{"follower_id", "following_id"}`` (UUID strings), emitted only when
an edge really appeared or disappeared, never for an idempotent repeat.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from skills.user_follow_system import repository as _repo
from skills.user_follow_system import service as _service
from skills.user_follow_system.models import Follow

__all__ = ["Follow", "FollowerBatch", "followee_ids_query", "follower_ids", "is_following"]


@dataclass(frozen=True)
class FollowerBatch:
    """One batch of follower ids; pass ``next_after`` back as ``after`` (``None``: done)."""

    ids: list[uuid.UUID]
    next_after: str | None


def followee_ids_query(follower_id: uuid.UUID, *, include_hidden: bool = False) -> Select[Any]:
    """A ``SELECT`` of the ids ``follower_id`` follows, for ``IN (…)`` / joins.

    Banned and deleted accounts are left out unless ``include_hidden``. Nothing runs until
    you execute a statement that embeds it.
    """
    return _repo.followee_ids(follower_id, include_hidden=include_hidden)


async def follower_ids(
    session: AsyncSession, user_id: uuid.UUID, *, after: str | None = None, limit: int = 500
) -> FollowerBatch:
    """Ids of ``user_id``'s visible followers, newest follow first, ``limit`` at a time.

    ``after`` is an opaque position (a string, so it fits in a job message); keyset paging
    means follows added or removed during a fan-out never shift the remaining batches.
    Runs on your session; use a short transaction per batch for long fan-outs.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    ids, next_after = await _service.follower_batch(session, user_id, after=after, limit=limit)
    return FollowerBatch(ids=ids, next_after=next_after)


async def is_following(
    session: AsyncSession, follower_id: uuid.UUID, following_id: uuid.UUID
) -> bool:
    """Whether the edge exists (whatever the two accounts' ban or deletion state)."""
    return await _repo.is_following(session, follower_id, following_id)
