"""Recommendation rules: gather signals, blend, explain, cache, and page through the list.

Lists are computed for a few minutes (cached as ids, scores and reasons) and hydrated on every
request through tag-search-discovery's ``listable_reads``, so a track that became private,
hidden or whose owner was banned drops out at once even from a cached list.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from core.pagination import Page, decode_cursor, encode_cursor
from skills.play_history_tracking.api import recent_track_ids
from skills.recommendation_basic import repository as repo
from skills.recommendation_basic import scoring
from skills.recommendation_basic.schemas import Reason, Recommendation
from skills.recommendation_basic.scoring import Scored
from skills.tag_search_discovery.api import listable_reads, trending_track_ids

if TYPE_CHECKING:
    from core.kernel import Kernel

USER_CACHE = "recommendations"
SIMILAR_CACHE = "similar"
LIST_SIZE = 50
HISTORY = 100  # recent likes and plays looked at (and excluded)
SEED_LIKES = 20  # latest likes whose other likers are asked
TOP_TAGS = 8
PER_TAG = 50
OWNER_CAP = {"user": 2, "similar": 3}


async def for_user(kernel: Kernel, session: AsyncSession, user_id: uuid.UUID) -> list[Any]:
    """The caller's cached list (computed when missing)."""
    return list(
        await kernel.cache.get_or_set(
            USER_CACHE, str(user_id), lambda: compute_for_user(session, user_id)
        )
    )


async def compute_for_user(session: AsyncSession, user_id: uuid.UUID) -> list[dict[str, Any]]:
    """Tag affinity from likes and plays + co-likes of the latest likes; never the caller's
    own tracks nor what they liked or played lately; trending fills the rest (new users get
    trending only)."""
    liked = await repo.recent_likes(session, user_id, HISTORY)
    played = await recent_track_ids(session, user_id, HISTORY)
    seen = list(dict.fromkeys([*liked, *played]))
    profile = scoring.taste_profile(liked, played, await repo.tags_of(session, seen), TOP_TAGS)
    tagged = await repo.tagged(
        session, [tag_id for tag_id, _ in profile], per_tag=PER_TAG, exclude_owner=user_id
    )
    co = await repo.co_liked(
        session, liked[:SEED_LIKES], me=user_id, exclude=seen, per_seed=50, per_user=30, limit=300
    )
    excluded = set(seen)
    ranked = scoring.blend(
        co=co,
        tagged=[(t, g) for t, g in tagged if t not in excluded],
        tag_weights=profile,
        tag_kind="tag_affinity",
    )
    info = await repo.eligible(session, [s.track_id for s in ranked], exclude_owner=user_id)
    owners = {track_id: row.owner_id for track_id, row in info.items()}
    kept = scoring.cap_per_owner(ranked, owners, OWNER_CAP["user"], LIST_SIZE)
    kept += await _trending(session, excluded | {s.track_id for s in kept}, user_id, len(kept))
    return await _explained(session, kept)


async def similar(
    kernel: Kernel, session: AsyncSession, track: dict[str, Any]
) -> list[dict[str, Any]]:
    """Tracks sharing tags with ``track`` and liked by its likers (cached per track)."""

    async def compute() -> list[dict[str, Any]]:
        track_id = uuid.UUID(track["id"])
        tags = (await repo.tags_of(session, [track_id]))[track_id]
        tagged = await repo.tagged(
            session, [tag_id for tag_id, _ in tags], per_tag=PER_TAG, exclude_owner=None
        )
        co = await repo.co_liked(
            session, [track_id], me=None, exclude=[track_id], per_seed=200, per_user=30, limit=300
        )
        candidates = {t for t, _ in tagged if t != track_id} | set(co)
        info = await repo.eligible(session, list(candidates), exclude_owner=None)
        ranked = scoring.blend(
            co=co,
            tagged=[(t, g) for t, g in tagged if t != track_id],
            tag_weights={tag: 1.0 for tag in tags},
            tag_kind="shared_tags",
            mood=track.get("mood"),
            moods={t: row.mood for t, row in info.items()},
        )
        owners = {t: row.owner_id for t, row in info.items()}
        kept = scoring.cap_per_owner(ranked, owners, OWNER_CAP["similar"], LIST_SIZE)
        kept += await _trending(session, {track_id, *(s.track_id for s in kept)}, None, len(kept))
        return await _explained(session, kept, similar_to=track["title"])

    return list(await kernel.cache.get_or_set(SIMILAR_CACHE, track["id"], compute))


async def _trending(
    session: AsyncSession, excluded: set[uuid.UUID], owner: uuid.UUID | None, have: int
) -> list[Scored]:
    """Trending tracks to fill a short list up to ``LIST_SIZE``."""
    if have >= LIST_SIZE:
        return []
    ids = await trending_track_ids(session, limit=LIST_SIZE + len(excluded), exclude_owner=owner)
    fresh = [track_id for track_id in ids if track_id not in excluded][: LIST_SIZE - have]
    return [Scored(track_id, 0.0, {"kind": "trending"}) for track_id in fresh]


async def _explained(
    session: AsyncSession, kept: list[Scored], *, similar_to: str | None = None
) -> list[dict[str, Any]]:
    """Cacheable entries with a sentence per reason (titles only of tracks anyone may see)."""
    vias = [uuid.UUID(s.reason["track_id"]) for s in kept if s.reason.get("track_id")]
    titles = {
        str(k): v.title for k, v in (await repo.eligible(session, vias, exclude_owner=None)).items()
    }
    for item in kept:
        item.reason["text"] = _sentence(item.reason, titles, similar_to)
        if similar_to is not None:
            item.reason.pop("track_id", None)  # the source track itself: nothing to add
    return [item.cached() for item in kept]


def _sentence(reason: dict[str, Any], titles: dict[str, str], similar_to: str | None) -> str:
    kind = reason["kind"]
    tags = ", ".join(reason.get("tags", [])[:3])
    if kind == "co_liked" and similar_to is not None:
        return f"Listeners who liked “{similar_to}” also liked this"
    if kind == "co_liked":
        title = titles.get(reason.get("track_id") or "")
        if title is None:
            return "Liked by listeners with your taste"
        return f"Listeners who liked “{title}” also liked this"
    if kind == "tag_affinity":
        return f"Matches tags you like: {tags}"
    if kind == "shared_tags":
        return f"Shares tags: {tags}"
    return "Trending now"


async def page(
    kernel: Kernel,
    session: AsyncSession,
    entries: list[dict[str, Any]],
    *,
    limit: int,
    cursor: str | None,
) -> Page[Recommendation]:
    """One page of a cached list (the cursor is a position in it), hydrated fresh."""
    start = int((decode_cursor(cursor, arity=1) or [0])[0])
    chunk = entries[start : start + limit] if start >= 0 else []
    reads = await listable_reads(kernel, session, [uuid.UUID(e["id"]) for e in chunk])
    by_id = {str(read.id): read for read in reads}
    items = [
        Recommendation(track=by_id[e["id"]], score=e["score"], reason=Reason(**e["reason"]))
        for e in chunk
        if e["id"] in by_id
    ]
    more = start + limit < len(entries)
    return Page[Recommendation](
        items=items, next_cursor=encode_cursor([start + limit]) if more else None
    )


async def forget(kernel: Kernel, user_id: str) -> None:
    await kernel.cache.invalidate(USER_CACHE, user_id)
