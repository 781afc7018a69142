"""SQL for ``user_profiles`` and nothing else: no transactions, no rules, no cache."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from skills.user_profile.models import UserProfile

T = UserProfile.__table__  # type: ignore[attr-defined]


async def get_by_id(
    session: AsyncSession, user_id: uuid.UUID, *, for_update: bool = False
) -> UserProfile | None:
    stmt = select(UserProfile).where(T.c.id == user_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.scalars(stmt)).one_or_none()


async def get_by_sub(session: AsyncSession, sub: str) -> UserProfile | None:
    return (await session.scalars(select(UserProfile).where(T.c.sub == sub))).one_or_none()


async def get_by_handle(session: AsyncSession, handle: str) -> UserProfile | None:
    """``handle`` must already be lower-case (stored handles are)."""
    return (await session.scalars(select(UserProfile).where(T.c.handle == handle))).one_or_none()


async def get_many(session: AsyncSession, user_ids: Iterable[uuid.UUID]) -> list[UserProfile]:
    ids = list(set(user_ids))
    if not ids:
        return []
    return list((await session.scalars(select(UserProfile).where(T.c.id.in_(ids)))).all())


def visible_condition(*, include_banned: bool = False) -> ColumnElement[bool]:
    """WHERE clause for profiles others may see (never deleted; banned only if asked)."""
    condition = T.c.deleted_at.is_(None)
    if not include_banned:
        condition = condition & T.c.is_banned.is_(False)
    return condition


async def visible_ids(
    session: AsyncSession, user_ids: Iterable[uuid.UUID], *, include_banned: bool = False
) -> set[uuid.UUID]:
    ids = list(set(user_ids))
    if not ids:
        return set()
    rows = await session.scalars(
        select(T.c.id).where(T.c.id.in_(ids), visible_condition(include_banned=include_banned))
    )
    return set(rows.all())


async def insert_if_absent(session: AsyncSession, values: dict[str, Any]) -> uuid.UUID | None:
    """INSERT … ON CONFLICT DO NOTHING: the new id, or ``None`` when ``sub`` or ``handle``
    already exists (waiting for a concurrent insert of the same key to settle first)."""
    stmt = insert(T).values(**values).on_conflict_do_nothing().returning(T.c.id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def adjust_counters(
    session: AsyncSession, user_id: uuid.UUID, deltas: dict[str, int]
) -> bool:
    """Atomic ``x = GREATEST(x + d, 0)`` per counter; ``False`` if the row does not exist."""
    values = {name: func.greatest(T.c[name] + delta, 0) for name, delta in deltas.items()}
    result = await session.execute(
        update(T).where(T.c.id == user_id).values(**values).returning(T.c.id)
    )
    return result.scalar_one_or_none() is not None


async def set_banned(
    session: AsyncSession, user_id: uuid.UUID, banned: bool, now: datetime
) -> bool:
    """Flip the ban flag; ``True`` only when it actually changed."""
    result = await session.execute(
        update(T)
        .where(T.c.id == user_id, T.c.is_banned.is_not(banned))
        .values(is_banned=banned, banned_at=now if banned else None, updated_at=now)
        .returning(T.c.id)
    )
    return result.scalar_one_or_none() is not None


async def is_banned(session: AsyncSession, user_id: uuid.UUID) -> bool:
    return bool(await session.scalar(select(T.c.is_banned).where(T.c.id == user_id)))
