"""SQL of discovery lists: search, tag lists, latest, trending. No business rules here.

Every list joins ``user_profiles`` and applies music-streaming-basic's ``listable_condition()``
at query time (relevance ranking does it in :func:`listable_by_ids`), so privacy, hiding and
bans take effect on the next request.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Row,
    Select,
    any_,
    bindparam,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY, REAL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from skills.music_streaming_basic.api import (
    Tag,
    Track,
    TrackTag,
    list_item_columns,
    listable_condition,
)
from skills.tag_search_discovery import textnorm
from skills.tag_search_discovery.models import TrackSearch
from skills.user_profile.api import UserProfile

T = Track.__table__.c  # type: ignore[attr-defined]
S = TrackSearch.__table__.c  # type: ignore[attr-defined]
TRACK_TAGS = TrackTag.__table__  # type: ignore[attr-defined]
TAGS = Tag.__table__  # type: ignore[attr-defined]
PROFILES = UserProfile.__table__  # type: ignore[attr-defined]
RANK_WEIGHTS = [0.1, 0.2, 0.4, 1.0]  # D (description), C, B (artist, tags), A (title)
FUZZY_THRESHOLD = 0.5  # pg_trgm word similarity; 0.6 (the default) misses typos in short words
MIN_LIKE_CHARS = 3  # shorter phrases have no trigram: LIKE would scan the whole index


@dataclass(frozen=True)
class Criteria:
    """A search or list request, already normalised and validated by the service."""

    terms: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    mood: str | None = None
    bpm_min: float | None = None
    bpm_max: float | None = None


def listable_tracks() -> Select[Any]:
    """List items (:func:`list_item_columns`, plus ``trending_score`` for cursors) of listable
    tracks: plain rows, not ORM entities, which cost more to load than to fetch."""
    return (
        select(*list_item_columns(), T.trending_score)
        .join(PROFILES, PROFILES.c.id == T.owner_id)
        .where(listable_condition())
    )


def boost() -> ColumnElement[Any]:
    """A small, log-damped nudge towards what people play now (the trending score mirror)."""
    return 0.05 * func.ln(1.0 + S.boost)


def tagged(name: str) -> Select[Any]:
    """Tracks with the tag. The tag id is a scalar subquery, not a join: the planner then
    estimates the tag's frequency from ``track_tags`` statistics (a join hides it, and a
    popular tag gets a nested loop over hundreds of thousands of rows)."""
    tag_id = select(Tag.id).where(Tag.name == name).scalar_subquery()
    return select(TrackTag.track_id).where(TrackTag.tag_id == tag_id)


def filters(criteria: Criteria, columns: Any) -> list[ColumnElement[bool]]:
    """Tag, mood and BPM conditions on ``tracks`` or on ``track_search`` (same column names)."""
    key = columns.id if columns is T else columns.track_id
    conditions: list[ColumnElement[bool]] = [key.in_(tagged(name)) for name in criteria.tags]
    if criteria.mood is not None:
        conditions.append(columns.mood == criteria.mood)
    if criteria.bpm_min is not None:
        conditions.append(columns.bpm >= criteria.bpm_min)
    if criteria.bpm_max is not None:
        conditions.append(columns.bpm <= criteria.bpm_max)
    return conditions


def _bonus(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return cast(case((condition, 0.5), else_=0.0), Float)


def match(terms: list[str], *, fuzzy: bool) -> tuple[ColumnElement[bool], ColumnElement[Any]]:
    """(condition, relevance score) on ``track_search`` for armoured query terms.

    Exact: every term as a full-text prefix (any order, any field) or the whole phrase as a
    substring of title/artist/tags (the middle of a Korean word); ranked by ``ts_rank``
    (title > artist, tags > description) plus bonuses for the phrase itself and an exact
    title — cheap per row, unlike trigram similarity, so common words stay fast. Fuzzy:
    pg_trgm word similarity of the phrase to title/artist/tags, for typos.
    """
    phrase = " ".join(terms)
    if fuzzy:
        similarity = cast(func.word_similarity(phrase, S.names), Float)
        return literal(phrase).op("<%")(S.names), similarity + boost()
    query = func.to_tsquery("simple", textnorm.prefix_tsquery(terms))
    condition: ColumnElement[bool] = S.tsv.op("@@")(query)
    score: ColumnElement[Any] = cast(
        func.ts_rank(literal(RANK_WEIGHTS, ARRAY(REAL)), S.tsv, query), Float
    )
    score = score + _bonus(S.title_doc == phrase) + boost()
    if len(phrase) >= MIN_LIKE_CHARS:
        contains = S.names.like(f"%{phrase}%")
        condition, score = or_(condition, contains), score + _bonus(contains)
    return condition, score


async def ranked(
    session: AsyncSession,
    criteria: Criteria,
    *,
    fuzzy: bool,
    after: Sequence[Any] | None,
    limit: int,
) -> list[tuple[uuid.UUID, float]]:
    """(track id, score) best first from ``track_search`` alone (a top-N sort, no join),
    after the keyset ``after``. Not filtered for visibility: see :func:`listable_by_ids`."""
    condition, score = match(criteria.terms, fuzzy=fuzzy)
    query = select(S.track_id, score).where(condition, *filters(criteria, S))
    if after is not None:
        query = query.where(tuple_(score, S.track_id) < tuple_(*(literal(v) for v in after)))
    if fuzzy:
        threshold = str(FUZZY_THRESHOLD)
        await session.execute(
            select(func.set_config("pg_trgm.word_similarity_threshold", threshold, True))
        )
    query = query.order_by(score.desc(), S.track_id.desc()).limit(limit)
    return [(track_id, float(value)) for track_id, value in (await session.execute(query)).all()]


ORDERS: dict[str, tuple[str, ...]] = {
    "latest": ("created_at",),
    "popular": ("play_count", "like_count"),
    "trending": ("trending_score",),
}


async def sorted_by(
    session: AsyncSession,
    criteria: Criteria,
    *,
    sort: str,
    after: Sequence[Any] | None,
    limit: int,
) -> list[Row[Any]]:
    """Listable tracks matching ``criteria`` (exactly), ordered by a ``tracks`` column.

    With a common word the planner walks the column's index and checks each track's document;
    with a rare one it takes the few matches and sorts them.
    """
    query = listable_tracks().where(*filters(criteria, T))
    if criteria.terms:
        condition, _ = match(criteria.terms, fuzzy=False)
        query = query.join(TrackSearch, S.track_id == T.id).where(condition)  # type: ignore[arg-type]
    keys = [*(T[name] for name in ORDERS[sort]), T.id]
    if after is not None:
        query = query.where(tuple_(*keys) < tuple_(*(literal(v) for v in after)))
    query = query.order_by(*(key.desc() for key in keys)).limit(limit)
    return list((await session.execute(query)).all())


async def tag_exists(session: AsyncSession, name: str) -> bool:
    return (await session.scalar(select(Tag.id).where(Tag.name == name))) is not None


async def popular_tags(session: AsyncSession, limit: int) -> list[tuple[str, int]]:
    """Tags by how many listable tracks carry them (ties by name)."""
    count = func.count().label("n")
    query = (
        select(Tag.name, count)
        .join(TrackTag, TrackTag.tag_id == Tag.id)  # type: ignore[arg-type]
        .join(Track, T.id == TrackTag.track_id)  # type: ignore[arg-type]
        .join(UserProfile, UserProfile.id == T.owner_id)  # type: ignore[arg-type]
        .where(listable_condition())
        .group_by(Tag.name)
        .order_by(count.desc(), Tag.name)
        .limit(limit)
    )
    return [(name, int(n)) for name, n in (await session.execute(query)).all()]


async def trending_ids(
    session: AsyncSession,
    *,
    after: tuple[float, uuid.UUID] | None,
    limit: int,
    exclude_owner: uuid.UUID | None = None,
) -> list[tuple[uuid.UUID, float]]:
    """Listable tracks with a positive trending score, best first (``ix_tracks_trending_score``)."""
    query = (
        select(T.id, T.trending_score)
        .join(UserProfile, UserProfile.id == T.owner_id)  # type: ignore[arg-type]
        .where(listable_condition(), T.trending_score > 0)
    )
    if exclude_owner is not None:
        query = query.where(T.owner_id != exclude_owner)
    if after is not None:
        query = query.where(tuple_(T.trending_score, T.id) < tuple_(*after))
    query = query.order_by(T.trending_score.desc(), T.id.desc()).limit(limit)
    return [(track_id, float(score)) for track_id, score in (await session.execute(query)).all()]


async def latest(
    session: AsyncSession, *, after: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[Row[Any]]:
    query = listable_tracks()
    if after is not None:
        query = query.where(tuple_(T.created_at, T.id) < tuple_(*after))
    query = query.order_by(T.created_at.desc(), T.id.desc()).limit(limit)
    return list((await session.execute(query)).all())


def _in_ids() -> ColumnElement[bool]:
    """``tracks.id = ANY(:ids)``: one array parameter, so the statement compiles once
    (``IN (…)`` renders a parameter per id on every call)."""
    return T.id == any_(bindparam("ids", type_=ARRAY(T.id.type)))


@cache
def _listable_ids_query() -> Select[Any]:
    return (
        select(T.id)
        .join(PROFILES, PROFILES.c.id == T.owner_id)
        .where(listable_condition(), _in_ids())
    )


@cache
def _listable_by_ids_query() -> Select[Any]:
    return listable_tracks().where(_in_ids())


async def listable_ids(session: AsyncSession, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Which of ``ids`` are listable (ids only: cheap for a window of ranked candidates)."""
    if not ids:
        return set()
    return set((await session.scalars(_listable_ids_query(), {"ids": list(ids)})).all())


async def listable_by_ids(
    session: AsyncSession | AsyncConnection, ids: Sequence[uuid.UUID]
) -> list[Row[Any]]:
    """List items (:func:`listable_tracks`) of the listable ones among ``ids``, in the order
    given (hidden or private ones drop out). One statement, built once."""
    if not ids:
        return []
    rows = (await session.execute(_listable_by_ids_query(), {"ids": list(ids)})).all()
    by_id = {row.id: row for row in rows}
    return [by_id[i] for i in ids if i in by_id]
