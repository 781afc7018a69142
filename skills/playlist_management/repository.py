"""SQL for playlists and their entries; no rules, no transactions, no cache."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    delete,
    func,
    or_,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from skills.music_streaming_basic.api import Track, Viewer
from skills.playlist_management.models import Playlist, PlaylistRepair, PlaylistTrack
from skills.user_profile.api import UserProfile, visible_condition

P = Playlist.__table__.c  # type: ignore[attr-defined]
E = PlaylistTrack.__table__.c  # type: ignore[attr-defined]
R = PlaylistRepair.__table__.c  # type: ignore[attr-defined]
T = Track.__table__.c  # type: ignore[attr-defined]
U = UserProfile.__table__.c  # type: ignore[attr-defined]


# -- playlists ------------------------------------------------------------------------------
async def get_with_owner(
    session: AsyncSession, playlist_id: uuid.UUID
) -> tuple[Playlist, bool, bool] | None:
    """The playlist with its owner's ``(is_banned, is_deleted)``, or None."""
    row = (
        await session.execute(
            select(Playlist, U.is_banned, U.deleted_at.is_not(None))
            .join(UserProfile, U.id == P.owner_id)
            .where(P.id == playlist_id)
        )
    ).first()
    return None if row is None else (row[0], bool(row[1]), bool(row[2]))


async def lock(session: AsyncSession, playlist_id: uuid.UUID) -> Playlist | None:
    """``FOR NO KEY UPDATE``: exclusive among writers of this playlist, yet it lets foreign
    key checks (``FOR KEY SHARE``, e.g. a fork or a repair mark) through, so a track
    deletion's cascade never deadlocks against an entry edit."""
    query = (
        select(Playlist)
        .where(P.id == playlist_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)  # never the copy an earlier read left
    )
    return (await session.scalars(query)).first()


async def list_by_owner(
    session: AsyncSession,
    owner_id: uuid.UUID,
    *,
    everything: bool,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Playlist]:
    """Newest first; without ``everything`` only public playlists."""
    query = select(Playlist).where(P.owner_id == owner_id)
    if not everything:
        query = query.where(P.visibility == "public")
    if after is not None:
        query = query.where(tuple_(P.created_at, P.id) < tuple_(*after))
    query = query.order_by(P.created_at.desc(), P.id.desc()).limit(limit)
    return list((await session.scalars(query)).all())


async def delete_playlist(session: AsyncSession, playlist_id: uuid.UUID) -> None:
    await session.execute(delete(Playlist).where(P.id == playlist_id))


# -- entries --------------------------------------------------------------------------------
def track_visible_to(viewer: Viewer) -> ColumnElement[bool]:
    """The SQL form of music-streaming-basic's ``can_view``: owners and moderators see any
    track; others ready, unhidden public or unlisted tracks of visible accounts. Join
    ``Track`` and its owner's ``UserProfile`` first."""
    if viewer.is_moderator:
        return true()
    others = and_(
        T.status == "ready",
        T.visibility.in_(("public", "unlisted")),
        T.is_hidden.is_(False),
        visible_condition(),
    )
    if viewer.profile_id is None:
        return others
    return or_(T.owner_id == viewer.profile_id, others)


async def visible_entries(
    session: AsyncSession,
    playlist_id: uuid.UUID,
    viewer: Viewer,
    *,
    track_id: uuid.UUID | None = None,
) -> list[tuple[int, datetime, Track]]:
    """``(position, added_at, Track)`` rows the viewer may see, in playlist order."""
    query = (
        select(E.position, E.added_at, Track)
        .join(Track, T.id == E.track_id)
        .join(UserProfile, U.id == T.owner_id)
        .where(E.playlist_id == playlist_id, track_visible_to(viewer))
        .order_by(E.position)
    )
    if track_id is not None:
        query = query.where(E.track_id == track_id)
    return [(int(p), added, track) for p, added, track in await session.execute(query)]


async def shape(session: AsyncSession, playlist_id: uuid.UUID) -> tuple[int, int]:
    """``(count, max position)`` of the entries (max is -1 when empty)."""
    row = (
        await session.execute(
            select(func.count(), func.coalesce(func.max(E.position), -1)).where(
                E.playlist_id == playlist_id
            )
        )
    ).one()
    return int(row[0]), int(row[1])


async def renumber(session: AsyncSession, playlist_id: uuid.UUID) -> int:
    """Close gaps in one statement, keeping the order; returns how many rows moved."""
    ranked = (
        select(
            E.track_id,
            (func.row_number().over(order_by=(E.position, E.added_at, E.track_id)) - 1).label(
                "rank"
            ),
        )
        .where(E.playlist_id == playlist_id)
        .subquery()
    )
    result = await session.execute(
        update(PlaylistTrack)
        .where(
            E.playlist_id == playlist_id,
            E.track_id == ranked.c.track_id,
            E.position != ranked.c.rank,
        )
        .values(position=ranked.c.rank)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def position_of(
    session: AsyncSession, playlist_id: uuid.UUID, track_id: uuid.UUID
) -> int | None:
    return await session.scalar(
        select(E.position).where(E.playlist_id == playlist_id, E.track_id == track_id)
    )


async def shift(session: AsyncSession, playlist_id: uuid.UUID, *, start: int, by: int) -> None:
    """Add ``by`` to every position from ``start`` on."""
    await session.execute(
        update(PlaylistTrack)
        .where(E.playlist_id == playlist_id, E.position >= start)
        .values(position=E.position + by)
    )


async def insert_entry(
    session: AsyncSession, playlist_id: uuid.UUID, track_id: uuid.UUID, position: int
) -> None:
    await session.execute(
        insert(PlaylistTrack).values(playlist_id=playlist_id, track_id=track_id, position=position)
    )


async def copy_entries(
    session: AsyncSession, target_id: uuid.UUID, track_ids: Sequence[uuid.UUID]
) -> None:
    """Insert ``track_ids`` into an empty playlist at positions 0 … n-1."""
    if track_ids:
        await session.execute(
            insert(PlaylistTrack).values(
                [
                    {"playlist_id": target_id, "track_id": t, "position": i}
                    for i, t in enumerate(track_ids)
                ]
            )
        )


async def delete_entry(
    session: AsyncSession, playlist_id: uuid.UUID, track_id: uuid.UUID
) -> int | None:
    """Delete the entry; its former position, or None if there was none."""
    return await session.scalar(
        delete(PlaylistTrack)
        .where(E.playlist_id == playlist_id, E.track_id == track_id)
        .returning(E.position)
    )


async def move_entry(
    session: AsyncSession, playlist_id: uuid.UUID, track_id: uuid.UUID, old: int, new: int
) -> None:
    """Move one entry from ``old`` to ``new`` and slide the ones between, in one UPDATE."""
    step = 1 if new < old else -1
    await session.execute(
        update(PlaylistTrack)
        .where(
            E.playlist_id == playlist_id,
            E.position.between(min(old, new), max(old, new)),
        )
        .values(position=case((E.track_id == track_id, new), else_=E.position + step))
    )


async def set_count(session: AsyncSession, playlist_id: uuid.UUID, count: int, now: Any) -> None:
    await session.execute(
        update(Playlist).where(P.id == playlist_id).values(track_count=count, updated_at=now)
    )


# -- repair ---------------------------------------------------------------------------------
async def marks(session: AsyncSession, limit: int) -> list[tuple[uuid.UUID, int]]:
    rows = await session.execute(
        select(R.playlist_id, R.generation).order_by(R.marked_at).limit(limit)
    )
    return [(row[0], row[1]) for row in rows]


async def clear_mark(session: AsyncSession, playlist_id: uuid.UUID, generation: int) -> None:
    """Only the generation the repair saw: a mark made meanwhile stays for the next run."""
    await session.execute(
        delete(PlaylistRepair).where(R.playlist_id == playlist_id, R.generation == generation)
    )


async def inconsistent(session: AsyncSession, limit: int) -> list[uuid.UUID]:
    """Playlists whose ``track_count`` or positions disagree with their entries (full scan:
    for the periodic audit only)."""
    stats = (
        select(
            E.playlist_id.label("playlist_id"),
            func.count().label("n"),
            func.max(E.position).label("top"),
        )
        .group_by(E.playlist_id)
        .subquery()
    )
    n = func.coalesce(stats.c.n, 0)
    query = (
        select(P.id)
        .outerjoin(stats, stats.c.playlist_id == P.id)
        .where(or_(P.track_count != n, func.coalesce(stats.c.top, -1) != n - 1))
        .limit(limit)
    )
    return list((await session.scalars(query)).all())
