"""Discovery rules: exact-then-fuzzy search, keyset cursors per sort, cached lists."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import NotFound, ValidationFailed
from core.pagination import Page, decode_cursor, encode_cursor
from skills.music_streaming_basic.api import list_items, normalize_tags
from skills.tag_search_discovery import repository as repo
from skills.tag_search_discovery import textnorm
from skills.tag_search_discovery.repository import Criteria
from skills.tag_search_discovery.schemas import TagCount
from skills.tag_search_discovery.trending import CACHE as TRENDING_CACHE

if TYPE_CHECKING:
    from core.kernel import Kernel

TAGS_CACHE = "tags"
SEARCH_CACHE = "search"  # TTL 30 s (declared in the manifest hooks)
TOP_TAGS = 500  # the cached head of the tag list; nobody pages further
RELEVANCE_ROUNDS = 4  # widening windows before a page is returned short (with a cursor)


@asynccontextmanager
async def session_for(kernel: Kernel, session: AsyncSession | None) -> AsyncIterator[AsyncSession]:
    """``session``, or a session of our own for a route that did not take one (a cached first
    page of a search needs none: FastAPI's per-request session costs CPU even when unused)."""
    if session is not None:
        yield session
        return
    async with kernel.db.session() as own:
        yield own


async def listable_rows(
    kernel: Kernel, session: AsyncSession | None, ids: Sequence[uuid.UUID]
) -> list[Row[Any]]:
    """List-item rows of the listable tracks among ``ids`` (cached rankings), in that order:
    on ``session`` if it is already in a transaction, else in autocommit."""
    if session is not None and session.in_transaction():
        return await repo.listable_by_ids(session, ids)
    async with kernel.db.autocommit() as conn:
        return await repo.listable_by_ids(conn, ids)


def criteria(
    q: str | None,
    tags: Sequence[str],
    mood: str | None,
    bpm_min: float | None,
    bpm_max: float | None,
) -> Criteria:
    """Validated, normalised criteria (422 ``VALIDATION_FAILED`` for bad combinations)."""
    if bpm_min is not None and bpm_max is not None and bpm_min > bpm_max:
        raise ValidationFailed("bpm_min must not exceed bpm_max.")
    try:
        names = normalize_tags(list(tags))
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from None
    return Criteria(
        terms=textnorm.query_terms(q or ""),
        tags=names,
        mood=mood,
        bpm_min=bpm_min,
        bpm_max=bpm_max,
    )


def _position(sort: str, values: list[Any]) -> list[Any]:
    """Typed keyset values from a decoded cursor (``values`` excludes the mode)."""
    try:
        if sort == "latest":
            return [datetime.fromisoformat(values[0]), uuid.UUID(values[1])]
        if sort == "popular":
            return [int(values[0]), int(values[1]), uuid.UUID(values[2])]
        return [float(values[0]), uuid.UUID(values[1])]
    except (TypeError, ValueError):
        raise ValidationFailed(
            "The cursor is not valid for this list.", code="INVALID_CURSOR"
        ) from None


def _cursor_values(sort: str, track: Any, score: float | None) -> list[Any]:
    if sort == "relevance":
        return [score, str(track.id)]
    if sort == "latest":
        return [track.created_at.isoformat(), str(track.id)]
    if sort == "popular":
        return [track.play_count, track.like_count, str(track.id)]
    return [track.trending_score, str(track.id)]


async def search(
    kernel: Kernel,
    session: AsyncSession | None,
    found: Criteria,
    *,
    sort: str,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    """Exact matches (full-text prefixes, substrings); only when there are none, typo-tolerant
    ones. The cursor remembers which of the two a listing is, and its sort.

    The first page of a text search is cached for 30 seconds as ranked ids: head
    queries (a common word typed by many people) cost one ranking of every match, so they
    are the ones worth caching. Tracks are loaded and filtered on every request (one
    statement, tags included), so hiding, privacy and bans still apply at once; new or renamed
    matches show within the TTL. Returns a ``SearchPage`` as a plain dict. Without a
    ``session`` it opens one only when the page is not a cached first page.
    """
    if sort == "relevance" and not found.terms:
        sort = "latest"  # nothing to be relevant to: newest first
    if cursor is None and found.terms:
        page = await _head_page(kernel, found, sort=sort, limit=limit)
        ids = [uuid.UUID(i) for i in page["ids"]]
        rows = await listable_rows(kernel, session, ids)
    else:
        async with session_for(kernel, session) as own:
            page, rows = await _search_page(own, found, sort=sort, limit=limit, cursor=cursor)
    items = await list_items(kernel, rows)
    return {"items": items, "next_cursor": page["next_cursor"], "fuzzy": page["fuzzy"]}


_computing: WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Task[Any]]] = (
    WeakKeyDictionary()
)


async def _head_page(kernel: Kernel, found: Criteria, *, sort: str, limit: int) -> Any:
    """The cached first page; on a miss, one computation per process however many requests
    wait for it (a popular query expiring must not start a ranking per request)."""
    key = _cache_key(found, sort, limit)
    cached = await kernel.cache.get(SEARCH_CACHE, key)
    if cached is not None:
        return cached
    running = _computing.setdefault(asyncio.get_running_loop(), {})
    task = running.get(key)
    if task is None:
        task = asyncio.create_task(_compute_head_page(kernel, key, found, sort, limit))
        running[key] = task
        task.add_done_callback(lambda _: running.pop(key, None))
    return await asyncio.shield(task)  # a caller that gives up does not cancel the others'


async def _compute_head_page(
    kernel: Kernel, key: str, found: Criteria, sort: str, limit: int
) -> dict[str, Any]:
    async with kernel.db.session() as session:
        page, _ = await _search_page(session, found, sort=sort, limit=limit, cursor=None)
    if page["ids"]:
        await kernel.cache.set(SEARCH_CACHE, key, page)
    return page


def _cache_key(found: Criteria, sort: str, limit: int) -> str:
    """Normalised criteria, so ``LOFI`` and ``lo-fi`` share an entry."""
    raw = [found.terms, found.tags, found.mood, found.bpm_min, found.bpm_max, sort, limit]
    return hashlib.sha256(json.dumps(raw).encode()).hexdigest()[:32]


async def _search_page(
    session: AsyncSession, found: Criteria, *, sort: str, limit: int, cursor: str | None
) -> tuple[dict[str, Any], list[Any]]:
    """(cacheable page: ids, next cursor, fuzzy; the track rows)."""
    decoded = decode_cursor(cursor, arity=5 if sort == "popular" else 4)  # sort, mode, keys…
    mode, after = "exact", None
    if decoded is not None:
        if decoded[0] != sort or decoded[1] not in ("exact", "fuzzy"):
            raise ValidationFailed("The cursor is not valid for this list.", code="INVALID_CURSOR")
        mode, after = decoded[1], _position(sort, decoded[2:])
    rows, resume = await _page(
        session, found, sort=sort, fuzzy=mode == "fuzzy", after=after, limit=limit
    )
    if not rows and resume is None and found.terms and decoded is None:
        mode = "fuzzy"
        rows, resume = await _page(session, found, sort=sort, fuzzy=True, after=None, limit=limit)
    if len(rows) > limit:
        rows = rows[:limit]
        track, score = rows[-1]
        resume = _cursor_values(sort, track, score)
    page = {
        "ids": [str(track.id) for track, _ in rows],
        "next_cursor": encode_cursor([sort, mode, *resume]) if resume else None,
        "fuzzy": mode == "fuzzy",
    }
    return page, [track for track, _ in rows]


async def _page(
    session: AsyncSession,
    found: Criteria,
    *,
    sort: str,
    fuzzy: bool,
    after: list[Any] | None,
    limit: int,
) -> tuple[list[tuple[Any, float | None]], list[Any] | None]:
    """Up to ``limit + 1`` (track, score) rows, and where to resume if the scan stopped early."""
    if sort != "relevance":
        tracks = await repo.sorted_by(session, found, sort=sort, after=after, limit=limit + 1)
        return [(track, None) for track in tracks], None
    kept: list[tuple[uuid.UUID, float]] = []
    window = max(3 * limit, 60)  # ranked ids, of which a few may not be listable
    for _ in range(RELEVANCE_ROUNDS):
        ranked = await repo.ranked(session, found, fuzzy=fuzzy, after=after, limit=window)
        listable = await repo.listable_ids(session, [track_id for track_id, _ in ranked])
        kept += [(track_id, score) for track_id, score in ranked if track_id in listable]
        if len(kept) > limit or len(ranked) < window:
            resume = None  # a full page (its last item makes the cursor), or the last one
            break
        after, window = [ranked[-1][1], ranked[-1][0]], window * 4
    else:
        assert after is not None  # set by every round that did not break
        resume = [after[0], str(after[1])]  # a short page, but more may follow
    kept = kept[: limit + 1]
    scores = dict(kept)
    rows = await repo.listable_by_ids(session, [track_id for track_id, _ in kept])
    return [(row, scores[row.id]) for row in rows], resume


async def tag_tracks(
    kernel: Kernel, session: AsyncSession, name: str, *, sort: str, limit: int, cursor: str | None
) -> dict[str, Any]:
    """Listable tracks with this tag; 404 ``TAG_NOT_FOUND`` for a tag nobody ever used."""
    found = criteria(None, [name], None, None, None)
    if not await repo.tag_exists(session, found.tags[0]):
        raise NotFound("No tag with that name.", code="TAG_NOT_FOUND")
    return await search(kernel, session, found, sort=sort, limit=limit, cursor=cursor)


async def popular_tags(
    kernel: Kernel, session: AsyncSession, *, limit: int, cursor: str | None
) -> Page[TagCount]:
    """Most used tags with counts, from a cached head of ``TOP_TAGS`` (refreshed by the sweep
    job, so readers rarely pay for the aggregate)."""
    start = int((decode_cursor(cursor, arity=1) or [0])[0])
    counted = await kernel.cache.get_or_set(
        TAGS_CACHE, "popular", lambda: load_popular_tags(session)
    )
    page = counted[start : start + limit]
    more = start + limit < len(counted)
    return Page[TagCount](
        items=[TagCount(name=name, track_count=n) for name, n in page],
        next_cursor=encode_cursor([start + limit]) if more else None,
    )


async def load_popular_tags(session: AsyncSession) -> list[list[Any]]:
    return [[name, n] for name, n in await repo.popular_tags(session, TOP_TAGS)]


async def refresh_popular_tags(kernel: Kernel) -> None:
    async with kernel.db.session() as session:
        await kernel.cache.set(TAGS_CACHE, "popular", await load_popular_tags(session))


async def trending(
    kernel: Kernel, session: AsyncSession, *, limit: int, cursor: str | None
) -> dict[str, Any]:
    """Ranked ids come from a 1-minute cache (dropped by each job run); the tracks are loaded
    fresh and filtered again, so a hidden or banned track disappears at once."""
    position = decode_cursor(cursor, arity=2)
    after = _position("trending", position) if position else None

    async def rank() -> dict[str, Any]:
        rows = await repo.trending_ids(
            session, after=(after[0], after[1]) if after else None, limit=limit + 1
        )
        more = len(rows) > limit
        rows = rows[:limit]
        last = rows[-1] if rows and more else None
        return {
            "ids": [str(track_id) for track_id, _ in rows],
            "next_cursor": encode_cursor([last[1], str(last[0])]) if last else None,
        }

    ranked = await kernel.cache.get_or_set(TRENDING_CACHE, f"{limit}:{cursor or ''}", rank)
    ids = [uuid.UUID(i) for i in ranked["ids"]]
    rows = await listable_rows(kernel, session, ids)
    return {"items": await list_items(kernel, rows), "next_cursor": ranked["next_cursor"]}


async def latest(
    kernel: Kernel, session: AsyncSession, *, limit: int, cursor: str | None
) -> dict[str, Any]:
    position = decode_cursor(cursor, arity=2)
    after = _position("latest", position) if position else None
    rows = await repo.latest(
        session, after=(after[0], after[1]) if after else None, limit=limit + 1
    )
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(_cursor_values("latest", rows[-1], None))
    return {"items": await list_items(kernel, rows), "next_cursor": next_cursor}
