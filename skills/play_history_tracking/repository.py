"""SQL for plays; no business rules here."""

from __future__ import annotations

import functools
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    Text,
    Uuid,
    and_,
    bindparam,
    cast,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from core.events import outbox_insert
from skills.music_streaming_basic import api as tracks
from skills.music_streaming_basic.api import Track
from skills.play_history_tracking.models import PlayHistory
from skills.user_profile.api import UserProfile, visible_condition

P = PlayHistory.__table__.c  # type: ignore[attr-defined]
T = Track.__table__.c  # type: ignore[attr-defined]


_INSERT_PLAY = insert(PlayHistory.__table__).values(  # type: ignore[attr-defined]
    user_id=bindparam("user_id"),
    track_id=bindparam("track_id"),
    played_ms=bindparam("played_ms"),
    counted=bindparam("counted"),
)
_PLAY_COUNT = select(T.play_count).where(T.id == bindparam("track_id"))
_PLAY_COUNT_HELD = _PLAY_COUNT.with_for_update(read=True, key_share=True)
"""Built once: a play's hot statements (construction costs more than execution)."""


@functools.cache
def _play_statement(counted: bool, stored: bool) -> Any:
    """A play as one statement (autocommit, one round trip), answering the track's
    ``play_count`` (no row: the track is gone). Counted: the counter's ``UPDATE … RETURNING``
    (row-locked), the history row and the ``track.played`` event, only if the track exists.
    Stored but not counted: the history row under a key-share lock on the track, so a
    concurrent deletion waits and then cascades to it. Neither: just the count.
    Parameters: ``track_id``, ``user_id``, ``played_ms``, ``delta_play`` (counted)."""
    if counted:
        track = tracks.adjust_counters_statement("play").cte("track")
    else:
        track = (_PLAY_COUNT_HELD if stored else _PLAY_COUNT).cte("track")
    statement = select(track.c.play_count)
    user_id = cast(bindparam("user_id"), Uuid)
    played_ms = cast(bindparam("played_ms"), Integer)
    if stored:
        row = select(user_id, bindparam("track_id"), played_ms, literal(counted))
        history = insert(PlayHistory.__table__).from_select(  # type: ignore[attr-defined]
            ["user_id", "track_id", "played_ms", "counted"], row.select_from(track)
        )
        statement = statement.add_cte(history.cte("stored"))
    if counted:
        payload: dict[str, Any] = {
            "track_id": cast(bindparam("track_id"), Text),
            "user_id": cast(user_id, Text),
            "counted": true(),
            "played_ms": played_ms,
        }
        statement = statement.add_cte(outbox_insert("track.played", payload, track).cte("event"))
    return statement


async def record_play(
    conn: AsyncConnection,
    *,
    user_id: uuid.UUID | None,
    track_id: uuid.UUID,
    played_ms: int | None,
    counted: bool,
    stored: bool,
) -> int | None:
    """Run :func:`_play_statement`: the track's ``play_count`` after the play, None if gone."""
    params = {"track_id": track_id, "user_id": user_id, "played_ms": played_ms, "delta_play": 1}
    value = (await conn.execute(_play_statement(counted, stored), params)).scalar()
    return None if value is None else int(value)


async def insert_play(
    session: AsyncSession,
    *,
    user_id: uuid.UUID | None,
    track_id: uuid.UUID,
    played_ms: int | None,
    counted: bool,
) -> None:
    params = {"user_id": user_id, "track_id": track_id, "played_ms": played_ms, "counted": counted}
    await session.execute(_INSERT_PLAY, params)


async def play_count(session: AsyncSession, track_id: uuid.UUID, *, hold: bool) -> int | None:
    """The track's ``play_count`` (None if gone). ``hold`` takes FOR KEY SHARE, so the track
    cannot be deleted before our row referencing it commits (and cascades with it)."""
    query = _PLAY_COUNT_HELD if hold else _PLAY_COUNT
    value = await session.scalar(query, {"track_id": track_id})
    return None if value is None else int(value)


async def lock_listener_track(
    session: AsyncSession, user_id: uuid.UUID, track_id: uuid.UUID
) -> None:
    """Serialise one listener's plays of one track until commit (used when Redis is down)."""
    key = f"play-history:{user_id}:{track_id}"
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(key, 0))))


async def counted_within(
    session: AsyncSession, user_id: uuid.UUID, track_id: uuid.UUID, seconds: int
) -> bool:
    """Whether the listener has a counted play of the track in the last ``seconds``."""
    since = func.now() - timedelta(seconds=seconds)
    found = await session.scalar(
        select(P.id)
        .where(P.user_id == user_id, P.track_id == track_id, P.counted, P.played_at > since)
        .limit(1)
    )
    return found is not None


def viewable(user_id: uuid.UUID, *, is_moderator: bool) -> ColumnElement[bool]:
    """Tracks ``user_id`` may see — the SQL twin of music-streaming-basic's ``can_view``
    (public or unlisted, ready, not hidden, owner visible; everything for owner and moderators).
    Join ``UserProfile`` on ``Track.owner_id`` first."""
    if is_moderator:
        return true()
    return or_(
        T.owner_id == user_id,
        and_(
            T.status == "ready",
            T.visibility.in_(("public", "unlisted")),
            T.is_hidden.is_(False),
            visible_condition(),
        ),
    )


async def history(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    is_moderator: bool,
    after: tuple[datetime, int] | None,
    limit: int,
) -> list[tuple[int, datetime, int | None, bool, Track]]:
    """The listener's plays, newest first, joined to the tracks they may still see."""
    query = (
        select(P.id, P.played_at, P.played_ms, P.counted, Track)
        .join(Track, T.id == P.track_id)
        .join(UserProfile, UserProfile.id == T.owner_id)  # type: ignore[arg-type]
        .where(P.user_id == user_id, viewable(user_id, is_moderator=is_moderator))
    )
    if after is not None:
        query = query.where(tuple_(P.played_at, P.id) < tuple_(*after))
    query = query.order_by(P.played_at.desc(), P.id.desc()).limit(limit)
    return [tuple(row) for row in (await session.execute(query)).all()]  # type: ignore[misc]


async def recent_track_ids(
    session: AsyncSession, user_id: uuid.UUID, limit: int, *, counted_only: bool, scan: int
) -> list[uuid.UUID]:
    """Distinct tracks among the listener's last ``scan`` plays, most recently played first."""
    recent = select(P.track_id, P.played_at).where(P.user_id == user_id)
    if counted_only:
        recent = recent.where(P.counted)
    inner = recent.order_by(P.played_at.desc()).limit(scan).subquery()
    query = (
        select(inner.c.track_id)
        .group_by(inner.c.track_id)
        .order_by(func.max(inner.c.played_at).desc(), inner.c.track_id)
        .limit(limit)
    )
    return list((await session.scalars(query)).all())


def windowed_counts(since: datetime, until: datetime | None = None) -> Select[Any]:
    """``SELECT track_id, plays`` of counted plays (anonymous included) in ``[since, until)``."""
    query = select(P.track_id, func.count().label("plays")).where(P.counted, P.played_at >= since)
    if until is not None:
        query = query.where(P.played_at < until)
    return query.group_by(P.track_id)
