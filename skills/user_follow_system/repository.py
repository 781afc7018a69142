"""SQL for ``follows`` (and the profile columns it reads or locks); no rules, no transactions.

Lists are keyset-paginated on ``(follows.created_at, follows.id)`` newest first, which the two
``(…, created_at DESC, id DESC)`` indexes serve directly at any depth.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Select, delete, exists, func, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from skills.user_follow_system.models import Follow
from skills.user_profile.api import UserProfile, visible_condition

F = Follow.__table__.c  # type: ignore[attr-defined]
FT = Follow.__table__  # type: ignore[attr-defined]
P = UserProfile.__table__.c  # type: ignore[attr-defined]
PT = UserProfile.__table__  # type: ignore[attr-defined]

Direction = Literal["followers", "following"]
"""``followers``: who follows the user; ``following``: whom the user follows."""
Position = tuple[datetime, uuid.UUID]
"""A keyset position: ``(follows.created_at, follows.id)`` of the last row already seen."""


def _sides(direction: Direction) -> tuple[Any, Any]:
    """(column holding the listed user, column holding the other side) for a direction."""
    if direction == "followers":
        return F.following_id, F.follower_id
    return F.follower_id, F.following_id


# -- profiles ---------------------------------------------------------------------------
async def lock_profiles(
    session: AsyncSession, user_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, Any]:
    """Lock profile rows ``FOR NO KEY UPDATE`` in id order and return their state.

    Every writer of follow counters locks in this one global order, so two users following
    each other at the same moment (or a recount) queue instead of deadlocking.
    """
    ids = sorted(set(user_ids))
    if not ids:
        return {}
    rows = await session.execute(
        select(P.id, P.is_banned, P.deleted_at, P.followers_count, P.following_count)
        .where(P.id.in_(ids))
        .order_by(P.id)
        .with_for_update(key_share=True)
    )
    return {row.id: row for row in rows}


async def get_profile(session: AsyncSession, user_id: uuid.UUID) -> UserProfile | None:
    return (await session.scalars(select(UserProfile).where(P.id == user_id))).one_or_none()


async def followers_count(session: AsyncSession, user_id: uuid.UUID) -> int:
    return int(await session.scalar(select(P.followers_count).where(P.id == user_id)) or 0)


# -- edges ------------------------------------------------------------------------------
async def insert_follow(
    session: AsyncSession, follower_id: uuid.UUID, following_id: uuid.UUID
) -> uuid.UUID | None:
    """``INSERT … ON CONFLICT DO NOTHING``: the new row's id, ``None`` if it already existed."""
    stmt = (
        insert(FT)
        .values(id=uuid.uuid4(), follower_id=follower_id, following_id=following_id)
        .on_conflict_do_nothing(constraint="uq_follows_follower_following")
        .returning(F.id)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def delete_follow(
    session: AsyncSession, follower_id: uuid.UUID, following_id: uuid.UUID
) -> uuid.UUID | None:
    """``DELETE … RETURNING``: the removed row's id, ``None`` if there was none."""
    stmt = (
        delete(FT)
        .where(F.follower_id == follower_id, F.following_id == following_id)
        .returning(F.id)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


def _edge(follower_id: uuid.UUID, following_id: uuid.UUID) -> Any:
    return exists().where(F.follower_id == follower_id, F.following_id == following_id)


async def relation(
    session: AsyncSession, caller_id: uuid.UUID, other_id: uuid.UUID
) -> tuple[bool, bool, int]:
    """(caller follows other, other follows caller, other's followers_count) in one query."""
    row = (
        await session.execute(
            select(
                _edge(caller_id, other_id).label("following"),
                _edge(other_id, caller_id).label("followed_by"),
                P.followers_count,
            ).where(P.id == other_id)
        )
    ).one()
    return bool(row.following), bool(row.followed_by), int(row.followers_count)


async def is_following(
    session: AsyncSession, follower_id: uuid.UUID, following_id: uuid.UUID
) -> bool:
    return bool(await session.scalar(select(_edge(follower_id, following_id))))


def _after(position: Position | None) -> Any:
    if position is None:
        return None
    return tuple_(F.created_at, F.id) < tuple_(position[0], position[1])


async def page(
    session: AsyncSession,
    user_id: uuid.UUID,
    direction: Direction,
    *,
    after: Position | None,
    limit: int,
) -> list[tuple[UserProfile, datetime, uuid.UUID]]:
    """Visible profiles on the other side of the user's edges, newest edge first.

    Banned and deleted accounts are filtered in the join, so a page is never short because
    of them and the cursor stays a pure keyset position.
    """
    own, other = _sides(direction)
    stmt = (
        select(UserProfile, F.created_at, F.id)
        .join_from(FT, UserProfile, P.id == other)
        .where(own == user_id, visible_condition())
        .order_by(F.created_at.desc(), F.id.desc())
        .limit(limit)
    )
    condition = _after(after)
    if condition is not None:
        stmt = stmt.where(condition)
    return [(row[0], row[1], row[2]) for row in (await session.execute(stmt)).all()]


async def neighbour_page(
    session: AsyncSession,
    user_id: uuid.UUID,
    direction: Direction,
    *,
    after: Position | None,
    limit: int,
    visible_only: bool,
) -> list[tuple[uuid.UUID, datetime, uuid.UUID]]:
    """Ids on the other side of the user's edges, newest edge first (fan-out and recounts)."""
    own, other = _sides(direction)
    stmt = select(other, F.created_at, F.id).where(own == user_id)
    if visible_only:
        stmt = stmt.join_from(FT, PT, P.id == other).where(visible_condition())
    condition = _after(after)
    if condition is not None:
        stmt = stmt.where(condition)
    stmt = stmt.order_by(F.created_at.desc(), F.id.desc()).limit(limit)
    return [(row[0], row[1], row[2]) for row in (await session.execute(stmt)).all()]


def followee_ids(follower_id: uuid.UUID, *, include_hidden: bool = False) -> Select[Any]:
    """``SELECT following_id`` of the user's follows, visible accounts only unless asked.

    Never correlated, so it means the same inside a query that itself selects profiles.
    """
    stmt = select(F.following_id).where(F.follower_id == follower_id)
    if not include_hidden:
        stmt = stmt.join_from(FT, PT, P.id == F.following_id).where(visible_condition())
    return stmt.correlate(None)


async def visible_edge_counts(
    session: AsyncSession, user_ids: Iterable[uuid.UUID], direction: Direction
) -> dict[uuid.UUID, int]:
    """Per user, how many edges in ``direction`` lead to a visible account."""
    ids = list(set(user_ids))
    if not ids:
        return {}
    own, other = _sides(direction)
    rows = await session.execute(
        select(own, func.count())
        .select_from(FT)
        .join(PT, P.id == other)
        .where(own.in_(ids), visible_condition())
        .group_by(own)
    )
    return {row[0]: int(row[1]) for row in rows}
