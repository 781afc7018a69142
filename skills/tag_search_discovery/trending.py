"""Trending scores: windowed, time-decayed engagement with an age decay (see README).

    activity = Σ_plays 2^(−Δ/24h) + 3·Σ_likes 2^(−Δ/24h) + 5·Σ_comments 2^(−Δ/24h)
    score    = activity / (1 + age_days / 30)

Δ is the time since each play, like or comment, over the last 7 days only; ``age_days`` is the
time since the track was uploaded. The job writes ``tracks.trending_score`` (indexed, read by
``/discover/trending`` and ``sort=trending``) in small batches, and only where the score
moved by more than 5 %. Decay alone shrinks every score by about the same factor, so skipping
small changes barely reorders anything: with a 24 h half-life an idle score needs ~100 minutes
to drift 5 %, and a track is rewritten when something happened to it, not every minute. The
same batches mirror the score into ``track_search.boost`` (search ranking reads it there).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    Float,
    TextClause,
    bindparam,
    cast,
    func,
    literal,
    select,
    text,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID

from skills.interaction_like_comment.api import Comment, Like
from skills.music_streaming_basic.api import Track
from skills.play_history_tracking.api import PlayHistory

if TYPE_CHECKING:
    from core.kernel import Kernel

WINDOW = timedelta(days=7)
HALF_LIFE_HOURS = 24.0
AGE_SCALE_DAYS = 30.0
WEIGHTS = {"play": 1.0, "like": 3.0, "comment": 5.0}
CHANGE = 0.05
BATCH = 2000
CACHE = "trending"

T = Track.__table__.c  # type: ignore[attr-defined]
P = PlayHistory.__table__.c  # type: ignore[attr-defined]
L = Like.__table__.c  # type: ignore[attr-defined]
C = Comment.__table__.c  # type: ignore[attr-defined]


def _decay(at: Any, now: datetime) -> ColumnElement[Any]:
    hours = func.extract("epoch", literal(now) - at) / 3600.0
    return func.power(0.5, hours / HALF_LIFE_HOURS)


def scores_query(now: datetime) -> Any:
    """``SELECT track_id, score`` for every track with activity in the window."""
    since = now - WINDOW
    activity = union_all(
        select(P.track_id, (WEIGHTS["play"] * func.sum(_decay(P.played_at, now))).label("w"))
        .where(P.counted, P.played_at >= since, P.played_at <= now)
        .group_by(P.track_id),
        select(L.track_id, (WEIGHTS["like"] * func.sum(_decay(L.created_at, now))).label("w"))
        .where(L.created_at >= since, L.created_at <= now)
        .group_by(L.track_id),
        select(C.track_id, (WEIGHTS["comment"] * func.sum(_decay(C.created_at, now))).label("w"))
        .where(C.created_at >= since, C.created_at <= now, C.hidden.is_(False))
        .group_by(C.track_id),
    ).subquery()
    age_days = func.greatest(func.extract("epoch", literal(now) - T.created_at), 0) / 86400.0
    score = cast(func.sum(activity.c.w) / (1.0 + age_days / AGE_SCALE_DAYS), Float)
    return (
        select(activity.c.track_id, score.label("score"), T.trending_score.label("old"))
        .join(Track, T.id == activity.c.track_id)  # type: ignore[arg-type]
        .group_by(activity.c.track_id, T.created_at, T.trending_score)
    )


def changes_query(now: datetime) -> Any:
    """``SELECT track_id, score``: only the writes worth making — active tracks whose score
    moved by more than ``CHANGE``, and tracks that went quiet (to zero). Compared in SQL, so
    the hundreds of thousands of unchanged scores never leave the database."""
    scores = scores_query(now).cte("scores")
    largest = func.greatest(func.abs(scores.c.score), func.abs(scores.c.old))
    moved_enough = func.abs(scores.c.score - scores.c.old) > func.greatest(1e-9, CHANGE * largest)
    still_active = select(scores.c.track_id).where(scores.c.track_id == T.id).exists()
    return union_all(
        select(scores.c.track_id, scores.c.score).where(moved_enough),
        select(T.id, literal(0.0, Float)).where(T.trending_score > 0, ~still_active),
    )


def _batch_update(statement: str) -> TextClause:
    return text(statement).bindparams(
        bindparam("ids", type_=ARRAY(UUID(as_uuid=True))),
        bindparam("scores", type_=ARRAY(Float)),
    )


WRITE_SCORES = _batch_update(
    "UPDATE tracks AS t SET trending_score = v.score "
    "FROM unnest(:ids, :scores) AS v(id, score) WHERE t.id = v.id"
)
WRITE_BOOSTS = _batch_update(  # the mirror in our own table, for search ranking
    "UPDATE track_search AS s SET boost = v.score "
    "FROM unnest(:ids, :scores) AS v(id, score) WHERE s.track_id = v.id"
)


async def compute_trending(
    kernel: Kernel, *, now: datetime | None = None, **_: Any
) -> dict[str, int]:
    """The periodic job: score active tracks, zero the ones that went quiet, drop the cache.

    Idempotent, and safe next to concurrent writes: each batch is its own short transaction
    and only touches ``trending_score`` (and our own ``boost``).
    """
    now = now or datetime.now(UTC)
    async with kernel.db.session() as session:
        # one big aggregate: room to hash and sort in memory; JIT costs more than it saves
        await session.execute(text("SET LOCAL work_mem = '64MB'"))
        await session.execute(text("SET LOCAL jit = off"))
        changes = sorted(
            (track_id, float(score))
            for track_id, score in await session.execute(changes_query(now))
        )
        await session.rollback()
    for start in range(0, len(changes), BATCH):
        chunk = changes[start : start + BATCH]
        values = {"ids": [t for t, _ in chunk], "scores": [score for _, score in chunk]}
        async with kernel.db.session() as session, session.begin():
            await session.execute(WRITE_SCORES, values)
            await session.execute(WRITE_BOOSTS, values)
    await kernel.cache.invalidate_namespace(CACHE)
    zeroed = sum(1 for _, score in changes if score == 0.0)
    return {"written": len(changes), "zeroed": zeroed}
