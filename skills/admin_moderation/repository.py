"""SQL only: no rules, no transactions (services own those)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import and_, or_, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from skills.admin_moderation.models import AuditEntry, Report
from skills.playlist_management.api import Playlist

R = Report.__table__.c  # type: ignore[attr-defined]
A = AuditEntry.__table__.c  # type: ignore[attr-defined]


async def insert_open_report(
    session: AsyncSession,
    *,
    reporter_id: uuid.UUID,
    target_type: str,
    target_id: uuid.UUID,
    reason: str,
) -> Report | None:
    """The new report, or ``None`` when the reporter already has an open one on the target
    (the partial unique index decides, so concurrent duplicates cannot both insert)."""
    statement = (
        insert(Report)
        .values(
            id=uuid.uuid4(),
            reporter_id=reporter_id,
            target_type=target_type,
            target_id=target_id,
            reason=reason,
            status="open",
        )
        .on_conflict_do_nothing(
            index_elements=["reporter_id", "target_type", "target_id"],
            index_where=text("status = 'open'"),
        )
        .returning(Report)
    )
    return (await session.scalars(statement)).one_or_none()


async def open_report_of(
    session: AsyncSession, reporter_id: uuid.UUID, target_type: str, target_id: uuid.UUID
) -> Report | None:
    return (
        await session.scalars(
            select(Report).where(
                R.reporter_id == reporter_id,
                R.target_type == target_type,
                R.target_id == target_id,
                R.status == "open",
            )
        )
    ).one_or_none()


async def get_report(session: AsyncSession, report_id: uuid.UUID) -> Report | None:
    return await session.get(Report, report_id)


async def lock_open_reports(
    session: AsyncSession, targets: Iterable[tuple[str, uuid.UUID]]
) -> list[Report]:
    """Every open report on any of these targets, locked ``FOR UPDATE`` in id order (one
    statement, one order: two moderators settling overlapping sets cannot deadlock)."""
    pairs = list(targets)
    if not pairs:
        return []
    query = (
        select(Report)
        .where(R.status == "open", tuple_(R.target_type, R.target_id).in_(pairs))
        .order_by(R.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return list((await session.scalars(query)).all())


async def list_reports(
    session: AsyncSession,
    *,
    status: str | None,
    target_type: str | None,
    target_id: uuid.UUID | None,
    oldest_first: bool,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Report]:
    """Keyset page on ``(created_at, id)``, newest or oldest first."""
    query = select(Report)
    if status is not None:
        query = query.where(R.status == status)
    if target_type is not None:
        query = query.where(R.target_type == target_type)
    if target_id is not None:
        query = query.where(R.target_id == target_id)
    if after is not None:
        at, last_id = after
        later = (R.created_at > at) if oldest_first else (R.created_at < at)
        tie = (R.id > last_id) if oldest_first else (R.id < last_id)
        query = query.where(or_(later, and_(R.created_at == at, tie)))
    if oldest_first:
        query = query.order_by(R.created_at, R.id)
    else:
        query = query.order_by(R.created_at.desc(), R.id.desc())
    return list((await session.scalars(query.limit(limit))).all())


async def list_audit(
    session: AsyncSession,
    *,
    actor_id: uuid.UUID | None,
    action: str | None,
    target_type: str | None,
    target_id: uuid.UUID | None,
    before: int | None,
    limit: int,
) -> list[AuditEntry]:
    """Newest first by ``id`` (the identity column orders the log)."""
    query = select(AuditEntry)
    for column, value in (
        (A.actor_id, actor_id),
        (A.action, action),
        (A.target_type, target_type),
        (A.target_id, target_id),
    ):
        if value is not None:
            query = query.where(column == value)
    if before is not None:
        query = query.where(A.id < before)
    return list((await session.scalars(query.order_by(A.id.desc()).limit(limit))).all())


async def playlist(session: AsyncSession, playlist_id: uuid.UUID) -> Playlist | None:
    """The playlist row (any visibility), for its owner and visibility."""
    return await session.get(Playlist, playlist_id)
