"""Discovery routes: search, tags, moods, trending, latest. Thin: rules live in the service."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from core.db import SessionDep
from core.errors import problem_doc
from core.kernel import kernel_of
from core.pagination import Cursor, Limit, Page
from skills.music_streaming_basic.api import Mood, TrackRead
from skills.tag_search_discovery import service
from skills.tag_search_discovery.schemas import (
    ListSort,
    MoodList,
    SearchPage,
    Sort,
    TagCount,
    mood_list,
)

router = APIRouter(tags=["tag-search-discovery"])
# Track lists return plain dicts: each route's ``response_model`` validates and serialises
# them once (returning models would validate every item a second time).


INVALID = problem_doc(
    422, "VALIDATION_FAILED", "Validation failed", "bpm_min must not exceed bpm_max."
)
TAG_NOT_FOUND = problem_doc(404, "TAG_NOT_FOUND", "Not found", "No tag with that name.")
Bpm = Annotated[float | None, Query(ge=0, le=400, description="Beats per minute (inclusive).")]



@router.get("/search/tracks", response_model=SearchPage, responses={422: INVALID})
async def search_tracks(
    request: Request,
    q: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Words to find in title, artist, tags and description: any order, "
            "prefixes and parts of words match (`잔잔`, `밤 산책`), `lo-fi` = `lofi`; when "
            "nothing matches exactly, typo-tolerant matches are returned with `fuzzy: true`.",
            examples=["잔잔한 밤", "lofi chill"],
        ),
    ] = None,
    tag: Annotated[
        list[str], Query(max_length=5, description="Only tracks with every one of these tags.")
    ] = [],  # noqa: B006 - FastAPI copies query defaults
    mood: Annotated[Mood | None, Query(description="One of `GET /moods`.")] = None,
    bpm_min: Bpm = None,
    bpm_max: Bpm = None,
    sort: Annotated[
        Sort,
        Query(
            description="`relevance` (default; `latest` when there is no `q`), `latest`, "
            "`popular` (all-time plays, then likes) or `trending`."
        ),
    ] = "relevance",
    limit: Limit = 20,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """Search public tracks. Every sort pages by keyset; a cursor only fits its own sort."""
    found = service.criteria(q, tag, mood, bpm_min, bpm_max)
    # No SessionDep: a cached first page needs one autocommit statement, no session.
    return await service.search(
        kernel_of(request), None, found, sort=sort, limit=limit, cursor=cursor
    )


@router.get("/tags", response_model=Page[TagCount])
async def tags(
    request: Request, session: SessionDep, limit: Limit = 50, cursor: Cursor = None
) -> Page[TagCount]:
    """Most used tags first, with how many public tracks carry each (cached ≤ 10 min)."""
    return await service.popular_tags(kernel_of(request), session, limit=limit, cursor=cursor)


@router.get(
    "/tags/{name:path}/tracks", response_model=Page[TrackRead], responses={404: TAG_NOT_FOUND}
)
async def tag_tracks(
    name: str,
    request: Request,
    session: SessionDep,
    sort: ListSort = "latest",
    limit: Limit = 20,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """Public tracks with this tag (matched after normalisation: `#LoFi` = `lofi`)."""
    return await service.tag_tracks(
        kernel_of(request), session, name, sort=sort, limit=limit, cursor=cursor
    )


@router.get("/moods", response_model=MoodList)
async def moods() -> MoodList:
    """The mood vocabulary: the only values `mood` takes on tracks and in search."""
    return mood_list()


@router.get("/discover/trending", response_model=Page[TrackRead])
async def discover_trending(
    request: Request, session: SessionDep, limit: Limit = 20, cursor: Cursor = None
) -> dict[str, Any]:
    """Tracks with the most recent plays, likes and comments, newer ones favoured (the
    formula is in the skill's README). Ranking cached for one minute."""
    return await service.trending(kernel_of(request), session, limit=limit, cursor=cursor)


@router.get("/discover/latest", response_model=Page[TrackRead])
async def discover_latest(
    request: Request, session: SessionDep, limit: Limit = 20, cursor: Cursor = None
) -> dict[str, Any]:
    """Newest public tracks first."""
    return await service.latest(kernel_of(request), session, limit=limit, cursor=cursor)
