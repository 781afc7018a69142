"""Follow rules: one transaction per call, counters and events in the same transaction.

Counters stay exact because they only move with a row that really changed: follow is
``INSERT … ON CONFLICT DO NOTHING RETURNING`` and adds 1 only if a row came back; unfollow is
``DELETE … RETURNING`` likewise. Both profile rows are locked first, in id order, so the
visibility check and the counter updates see one consistent state and mutual follows queue
instead of deadlocking. Counters count visible accounts only: a ban, unban or deletion
triggers :func:`recount_neighbours` for the accounts on the other side of its edges.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from core.auth import Principal
from core.errors import AccountBanned, ValidationFailed
from core.events import emit
from core.pagination import decode_cursor, encode_cursor
from skills.user_follow_system import repository as repo
from skills.user_follow_system.errors import CannotFollowSelf
from skills.user_follow_system.repository import Direction, Position
from skills.user_follow_system.schemas import FollowState
from skills.user_profile import api as profiles

if TYPE_CHECKING:
    from core.kernel import Kernel

RECOUNT_BATCH = 500
_COUNTER = {"followers": "followers_count", "following": "following_count"}


def _not_found(user_id: uuid.UUID) -> profiles.UserNotFound:
    return profiles.UserNotFound(f"No user with id {user_id}.")


async def _lock_pair(session: AsyncSession, caller_id: uuid.UUID, target_id: uuid.UUID) -> None:
    """Lock both profiles and re-check them: a ban or deletion may just have committed."""
    rows = await repo.lock_profiles(session, (caller_id, target_id))
    target = rows.get(target_id)
    if target is None or target.deleted_at is not None or target.is_banned:
        raise _not_found(target_id)
    caller = rows.get(caller_id)
    if caller is None or caller.deleted_at is not None:
        raise profiles.AccountDeleted("This account has been deleted.")
    if caller.is_banned:
        raise AccountBanned("This account is banned and cannot make changes.")


def _payload(caller_id: uuid.UUID, target_id: uuid.UUID) -> dict[str, Any]:
    return {"follower_id": str(caller_id), "following_id": str(target_id)}


async def _state(session: AsyncSession, caller_id: uuid.UUID, target_id: uuid.UUID) -> FollowState:
    following, followed_by, count = await repo.relation(session, caller_id, target_id)
    return FollowState(following=following, followed_by=followed_by, followers_count=count)


async def follow(
    kernel: Kernel, session: AsyncSession, caller_id: uuid.UUID, target_id: uuid.UUID
) -> FollowState:
    """Follow ``target_id``; a repeat is a no-op answering the same state."""
    if caller_id == target_id:
        raise CannotFollowSelf("You cannot follow yourself.")
    async with profiles.transaction(kernel, session):
        await _lock_pair(session, caller_id, target_id)
        if await repo.insert_follow(session, caller_id, target_id) is not None:
            await profiles.adjust_counters(session, target_id, followers=+1)
            await profiles.adjust_counters(session, caller_id, following=+1)
            emit(session, "user.followed", _payload(caller_id, target_id))
        return await _state(session, caller_id, target_id)


async def unfollow(
    kernel: Kernel, session: AsyncSession, caller_id: uuid.UUID, target_id: uuid.UUID
) -> FollowState:
    """Stop following ``target_id``; a repeat is a no-op answering the same state."""
    if caller_id == target_id:
        raise CannotFollowSelf("You cannot unfollow yourself.")
    async with profiles.transaction(kernel, session):
        await _lock_pair(session, caller_id, target_id)
        if await repo.delete_follow(session, caller_id, target_id) is not None:
            await profiles.adjust_counters(session, target_id, followers=-1)
            await profiles.adjust_counters(session, caller_id, following=-1)
            emit(session, "user.unfollowed", _payload(caller_id, target_id))
        return await _state(session, caller_id, target_id)


async def state(session: AsyncSession, caller_id: uuid.UUID, target_id: uuid.UUID) -> FollowState:
    """The caller's relation to a visible user (yourself: never following)."""
    async with session.begin():
        target = await repo.get_profile(session, target_id)
        if target is None or not profiles.is_visible(target):
            raise _not_found(target_id)
        return await _state(session, caller_id, target_id)


# -- lists --------------------------------------------------------------------------------
def _decode(cursor: str | None) -> Position | None:
    values = decode_cursor(cursor, arity=2)
    if values is None:
        return None
    try:
        return datetime.fromisoformat(values[0]), uuid.UUID(values[1])
    except (TypeError, ValueError):
        raise ValidationFailed(
            "The cursor is not valid for this list.", code="INVALID_CURSOR"
        ) from None


def _encode(position: Position) -> str:
    return encode_cursor([position[0].isoformat(), str(position[1])])


async def list_profiles(
    session: AsyncSession,
    user_id: uuid.UUID,
    direction: Direction,
    viewer: Principal | None,
    *,
    cursor: str | None,
    limit: int,
) -> tuple[list[profiles.ProfileRead], str | None]:
    """A page of followers or followees, newest follow first, visible accounts only.

    The listed user must be visible to the viewer (moderators and the owner also see a
    banned account's lists), otherwise 404 like the profile itself.
    """
    after = _decode(cursor)
    async with session.begin():
        subject = await repo.get_profile(session, user_id)
        if subject is None or not profiles.is_visible(subject, viewer):
            raise _not_found(user_id)
        rows = await repo.page(session, user_id, direction, after=after, limit=limit + 1)
        items = [profiles.ProfileRead.model_validate(row[0]) for row in rows[:limit]]
    next_cursor = _encode((rows[limit - 1][1], rows[limit - 1][2])) if len(rows) > limit else None
    return items, next_cursor


async def follower_batch(
    session: AsyncSession, user_id: uuid.UUID, *, after: str | None, limit: int
) -> tuple[list[uuid.UUID], str | None]:
    """Visible followers' ids, newest first, with the position to resume after."""
    position = _decode(after)
    rows = await repo.neighbour_page(
        session, user_id, "followers", after=position, limit=limit, visible_only=True
    )
    next_after = _encode((rows[-1][1], rows[-1][2])) if len(rows) == limit else None
    return [row[0] for row in rows], next_after


# -- counters after a visibility change ----------------------------------------------------
async def recount(session: AsyncSession, user_ids: list[uuid.UUID], direction: Direction) -> int:
    """Set ``followers_count`` (or ``following_count``) of ``user_ids`` to the exact number
    of visible accounts on that side; returns how many profiles changed.

    Runs inside the caller's transaction. Rows are locked first (same global order as
    follow), and the count is taken by the *next* statement, whose snapshot includes every
    follow that committed before the lock was granted; later ones wait and add their own 1.
    """
    locked = await repo.lock_profiles(session, user_ids)
    exact = await repo.visible_edge_counts(session, locked, direction)
    column = _COUNTER[direction]
    changed = 0
    for user_id, row in locked.items():
        delta = exact.get(user_id, 0) - getattr(row, column)
        if delta:
            await profiles.adjust_counters(session, user_id, **{direction: delta})
            changed += 1
    return changed


async def recount_neighbours(
    kernel: Kernel, session: AsyncSession, user_id: uuid.UUID, *, batch: int = RECOUNT_BATCH
) -> int:
    """Recount everyone on the other side of ``user_id``'s edges (after it was banned,
    unbanned or deleted), in batches of one short transaction each. Idempotent."""
    changed = 0
    # Users this account follows lose (or regain) a follower, and its followers a followee.
    sides: tuple[tuple[Direction, Direction], ...] = (
        ("following", "followers"),
        ("followers", "following"),
    )
    for side, counter in sides:
        position: Position | None = None
        while True:
            async with profiles.transaction(kernel, session):
                rows = await repo.neighbour_page(
                    session, user_id, side, after=position, limit=batch, visible_only=False
                )
                if rows:
                    changed += await recount(session, [row[0] for row in rows], counter)
            if len(rows) < batch:
                break
            position = (rows[-1][1], rows[-1][2])
    return changed
