"""SQL for tracks and tags; no business rules here."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Integer,
    Row,
    and_,
    bindparam,
    delete,
    exists,
    func,
    or_,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from skills.music_streaming_basic.models import Tag, Track, TrackTag
from skills.music_streaming_basic.schemas import TrackRead
from skills.user_profile.api import UserProfile, visible_condition

T = Track.__table__.c  # type: ignore[attr-defined]
_COMPUTED = ("tags", "hidden", "cover_url")
"""``TrackRead`` fields that are not a ``tracks`` column of the same name."""


def list_item_columns() -> list[Any]:
    """The columns of a list item, labelled as ``TrackRead`` names its fields: every field
    that is a column of the same name, ``hidden``, ``cover_key`` (signed into ``cover_url`` by
    :func:`skills.music_streaming_basic.service.list_items`) and ``tags`` (in the owner's
    order, aggregated here so a page is one statement). Derived from ``TrackRead`` so a new
    column field cannot be forgotten."""
    track_tags, tags_table = TrackTag.__table__, Tag.__table__  # type: ignore[attr-defined]
    tags = (
        select(func.array_agg(aggregate_order_by(tags_table.c.name, track_tags.c.position)))
        .select_from(track_tags.join(tags_table, tags_table.c.id == track_tags.c.tag_id))
        .where(track_tags.c.track_id == T.id)
        .scalar_subquery()
    )
    plain = [T[name] for name in TrackRead.model_fields if name not in _COMPUTED]
    return [*plain, T.is_hidden.label("hidden"), T.cover_key, tags.label("tags")]


TG = Tag.__table__.c  # type: ignore[attr-defined]
TT = TrackTag.__table__.c  # type: ignore[attr-defined]
P = UserProfile.__table__.c  # type: ignore[attr-defined]


class TrackCounts(NamedTuple):
    """A track's counters as a statement left them."""

    like_count: int
    comment_count: int
    play_count: int


async def get(session: AsyncSession, track_id: uuid.UUID, *, lock: bool = False) -> Track | None:
    query = select(Track).where(Track.id == track_id)
    if lock:
        query = query.with_for_update()
    return (await session.scalars(query)).first()


@functools.cache
def _load_statement() -> Any:
    """Built once (building it per call costs more CPU than executing it): the row's columns,
    ``tags`` (names in order, NULL for none) and ``owner_visible``."""
    tags = (
        select(func.array_agg(aggregate_order_by(TG.name, TT.position)))
        .select_from(TrackTag.__table__.join(Tag.__table__, TG.id == TT.tag_id))  # type: ignore[attr-defined]
        .where(TT.track_id == T.id)
        .scalar_subquery()
    )
    owner_ok = exists().where(P.id == T.owner_id, visible_condition())
    return select(
        *Track.__table__.columns,  # type: ignore[attr-defined]
        tags.label("tags"),
        owner_ok.label("owner_visible"),
    ).where(T.id == bindparam("track_id"))


async def get_for_cache(db: AsyncSession | AsyncConnection, track_id: uuid.UUID) -> Row[Any] | None:
    """The row's columns with its ``tags`` and ``owner_visible`` in one statement (a cache
    miss then costs one round trip instead of three); a session or an autocommit connection."""
    return (await db.execute(_load_statement(), {"track_id": track_id})).first()


async def owner_visible(session: AsyncSession, owner_id: uuid.UUID) -> bool:
    """Whether the owner's account is neither deleted nor banned."""
    found = await session.scalar(
        select(UserProfile.id).where(UserProfile.id == owner_id, visible_condition())
    )
    return found is not None


async def tags_for(
    session: AsyncSession, track_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[str]]:
    """Tag names per track in one query, in the order the owner gave them."""
    ids = list(track_ids)
    result: dict[uuid.UUID, list[str]] = {track_id: [] for track_id in ids}
    if not ids:
        return result
    rows = await session.execute(
        select(TrackTag.track_id, Tag.name)
        .join(Tag, Tag.id == TrackTag.tag_id)
        .where(TrackTag.track_id.in_(ids))  # type: ignore[attr-defined]
        .order_by(TrackTag.track_id, TrackTag.position)
    )
    for track_id, name in rows:
        result[track_id].append(name)
    return result


async def set_tags(session: AsyncSession, track_id: uuid.UUID, names: Sequence[str]) -> None:
    """Replace a track's tags, creating unknown tags (race-safe upsert)."""
    await session.execute(delete(TrackTag).where(TrackTag.track_id == track_id))  # type: ignore[arg-type]
    if not names:
        return
    await session.execute(
        insert(Tag)
        .values([{"name": n} for n in names])
        .on_conflict_do_nothing(index_elements=["name"])
    )
    ids = dict(
        (await session.execute(select(Tag.name, Tag.id).where(Tag.name.in_(names)))).all()  # type: ignore[attr-defined]
    )
    await session.execute(
        insert(TrackTag).values(
            [{"track_id": track_id, "tag_id": ids[n], "position": i} for i, n in enumerate(names)]
        )
    )


def listable() -> ColumnElement[bool]:
    """Tracks anyone may see in a list: ready, public, not hidden, owner visible.

    Join ``UserProfile`` on ``Track.owner_id`` before using it.
    """
    return and_(
        T.status == "ready", T.visibility == "public", T.is_hidden.is_(False), visible_condition()
    )


def viewable(
    profile_id: uuid.UUID | BindParameter[Any] | None, is_moderator: bool
) -> ColumnElement[bool]:
    """SQL twin of ``service.can_view``: what one viewer may open (join ``UserProfile`` first).
    ``profile_id`` may be a bind parameter, for statements built once."""
    if is_moderator:
        return true()
    others = and_(
        T.status == "ready",
        T.is_hidden.is_(False),
        # two comparisons, not IN (…): an IN list is an "expanding" parameter that SQLAlchemy
        # re-renders into the SQL on every execution of a statement built once
        or_(T.visibility == "public", T.visibility == "unlisted"),
        visible_condition(),
    )
    return others if profile_id is None else or_(T.owner_id == profile_id, others)


async def list_by_owner(
    session: AsyncSession,
    owner_id: uuid.UUID,
    *,
    everything: bool,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Track]:
    """Newest first; ``everything`` includes processing/private/hidden (owner, moderators)."""
    query = select(Track).where(Track.owner_id == owner_id)
    if not everything:
        query = query.join(UserProfile, UserProfile.id == Track.owner_id).where(listable())
    if after is not None:
        query = query.where(tuple_(T.created_at, T.id) < tuple_(*after))
    query = query.order_by(T.created_at.desc(), T.id.desc()).limit(limit)
    return list((await session.scalars(query)).all())


COUNTERS = ("like", "comment", "play")
_COUNT_COLUMNS = (T.like_count, T.comment_count, T.play_count)


@functools.cache
def adjust_statement(names: tuple[str, ...]) -> Any:
    """``UPDATE … RETURNING`` the counters, adding ``:delta_<name>`` (never below 0) to each
    named one; ``SELECT`` them when none is named. Built once per combination of counters."""
    if not names:
        return select(*_COUNT_COLUMNS).where(T.id == bindparam("track_id"))
    values = {
        f"{name}_count": func.greatest(
            getattr(T, f"{name}_count") + bindparam(f"delta_{name}", type_=Integer), 0
        )
        for name in names
    }
    return (
        update(Track.__table__)  # type: ignore[attr-defined]
        .where(T.id == bindparam("track_id"))
        .values(values)
        .returning(*_COUNT_COLUMNS)
    )


async def adjust_counters(
    session: AsyncSession, track_id: uuid.UUID, **deltas: int
) -> TrackCounts | None:
    """Add the deltas (never below 0) in one ``UPDATE … RETURNING``: the counters after it,
    so callers need no second SELECT; None if the track is gone. Without any delta it only
    reads them."""
    names = tuple(name for name in COUNTERS if deltas.get(name))
    params: dict[str, Any] = {"track_id": track_id}
    params.update((f"delta_{name}", deltas[name]) for name in names)
    row = (await session.execute(adjust_statement(names), params)).first()
    return None if row is None else TrackCounts(*row)


async def delete_track(session: AsyncSession, track_id: uuid.UUID) -> None:
    await session.execute(delete(Track).where(T.id == track_id))


async def ids_by_owner(session: AsyncSession, owner_id: uuid.UUID) -> list[uuid.UUID]:
    return list((await session.scalars(select(Track.id).where(Track.owner_id == owner_id))).all())
