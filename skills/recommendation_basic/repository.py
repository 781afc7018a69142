"""SQL of recommendations: taste signals and bounded candidate sets. No rules here.

Every candidate query is bounded (``LIMIT`` per seed, per neighbour, per tag), so the cost does
not grow with the catalogue or with how popular a track is.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Integer, and_, bindparam, func, literal, select, text, true
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.ext.asyncio import AsyncSession

from skills.interaction_like_comment.api import Like
from skills.music_streaming_basic.api import Tag, Track, TrackTag, listable_condition
from skills.user_profile.api import UserProfile

T = Track.__table__.c  # type: ignore[attr-defined]
L = Like.__table__.c  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Eligible:
    owner_id: uuid.UUID
    title: str
    mood: str | None


async def recent_likes(session: AsyncSession, user_id: uuid.UUID, limit: int) -> list[uuid.UUID]:
    """The user's latest likes, newest first (``ix_likes_user_created``)."""
    query = (
        select(L.track_id)
        .where(L.user_id == user_id)
        .order_by(L.created_at.desc(), L.id.desc())
        .limit(limit)
    )
    return list((await session.scalars(query)).all())


async def tags_of(
    session: AsyncSession, track_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[tuple[int, str]]]:
    """(tag id, name) per track, in one query."""
    found: dict[uuid.UUID, list[tuple[int, str]]] = {i: [] for i in track_ids}
    if not track_ids:
        return found
    rows = await session.execute(
        select(TrackTag.track_id, Tag.id, Tag.name)
        .join(Tag, Tag.id == TrackTag.tag_id)  # type: ignore[arg-type]
        .where(TrackTag.track_id.in_(list(track_ids)))  # type: ignore[attr-defined]
    )
    for track_id, tag_id, name in rows:
        found[track_id].append((tag_id, name))
    return found


async def tagged(
    session: AsyncSession,
    tag_ids: Sequence[int],
    *,
    per_tag: int,
    exclude_owner: uuid.UUID | None,
) -> list[tuple[uuid.UUID, int]]:
    """(track id, tag id): the ``per_tag`` best listable tracks of each tag by trending score
    (``ix_tracks_trending_score`` walked until enough tracks with the tag are found)."""
    if not tag_ids:
        return []
    tag = func.unnest(literal(list(tag_ids), ARRAY(Integer))).table_valued("id")
    tag = tag.render_derived(name="tag")  # unnest(...) AS tag(id)
    best = (
        select(T.id)
        .join(TrackTag, and_(TrackTag.track_id == T.id, TrackTag.tag_id == tag.c.id))  # type: ignore[arg-type]
        .join(UserProfile, UserProfile.id == T.owner_id)  # type: ignore[arg-type]
        .where(listable_condition())
        .order_by(T.trending_score.desc(), T.id.desc())
        .limit(per_tag)
    )
    if exclude_owner is not None:
        best = best.where(T.owner_id != exclude_owner)
    lateral = best.lateral("best")
    rows = await session.execute(
        select(lateral.c.id, tag.c.id).select_from(tag).join(lateral, true())
    )
    return [(track_id, tag_id) for track_id, tag_id in rows]


CO_LIKED_SQL = text(
    """
WITH neighbours AS (
    SELECT DISTINCT ON (l.user_id) l.user_id, l.track_id AS via
    FROM unnest(:seeds) AS seed(id)
    CROSS JOIN LATERAL (
        SELECT user_id, track_id FROM likes
        WHERE track_id = seed.id AND user_id IS DISTINCT FROM :me
        ORDER BY created_at DESC LIMIT :per_seed
    ) AS l
    ORDER BY l.user_id
)
SELECT x.track_id, count(*) AS listeners, mode() WITHIN GROUP (ORDER BY n.via) AS via
FROM neighbours n
CROSS JOIN LATERAL (
    SELECT track_id FROM likes WHERE user_id = n.user_id
    ORDER BY created_at DESC LIMIT :per_user
) AS x
WHERE NOT x.track_id = ANY(:exclude)
GROUP BY x.track_id
ORDER BY listeners DESC, x.track_id
LIMIT :limit
"""
).bindparams(
    bindparam("seeds", type_=ARRAY(UUID(as_uuid=True))),
    bindparam("exclude", type_=ARRAY(UUID(as_uuid=True))),
    bindparam("me", type_=UUID(as_uuid=True)),
)


async def co_liked(
    session: AsyncSession,
    seeds: Sequence[uuid.UUID],
    *,
    me: uuid.UUID | None,
    exclude: Sequence[uuid.UUID],
    per_seed: int,
    per_user: int,
    limit: int,
) -> dict[uuid.UUID, tuple[int, uuid.UUID]]:
    """ "People who liked this also liked": track → (how many of the seeds' recent likers also
    liked it, the seed most of them came through). Not filtered for visibility."""
    if not seeds:
        return {}
    rows = await session.execute(
        CO_LIKED_SQL,
        {
            "seeds": list(seeds),
            "me": me,
            "exclude": list(exclude),
            "per_seed": per_seed,
            "per_user": per_user,
            "limit": limit,
        },
    )
    return {track_id: (int(n), via) for track_id, n, via in rows}


async def eligible(
    session: AsyncSession, ids: Sequence[uuid.UUID], *, exclude_owner: uuid.UUID | None
) -> dict[uuid.UUID, Eligible]:
    """The listable ones among ``ids`` (minus ``exclude_owner``'s), with what ranking needs."""
    if not ids:
        return {}
    query = (
        select(T.id, T.owner_id, T.title, T.mood)
        .join(UserProfile, UserProfile.id == T.owner_id)  # type: ignore[arg-type]
        .where(listable_condition(), T.id.in_(list(ids)))
    )
    if exclude_owner is not None:
        query = query.where(T.owner_id != exclude_owner)
    rows = await session.execute(query)
    return {row.id: Eligible(row.owner_id, row.title, row.mood) for row in rows}
