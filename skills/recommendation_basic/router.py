"""``GET /recommendations`` and ``GET /tracks/{id}/similar``."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request

from core.db import SessionDep
from core.errors import problem_doc
from core.kernel import kernel_of
from core.pagination import Cursor, Limit
from skills.music_streaming_basic.api import TrackViewer, visible_track
from skills.recommendation_basic import service
from skills.recommendation_basic.schemas import RecommendationPage
from skills.user_profile.api import CurrentUser

router = APIRouter(tags=["recommendation-basic"])


UNAUTHORIZED = problem_doc(401, "UNAUTHORIZED", "Unauthorized", "Authentication required.")
NOT_FOUND = problem_doc(404, "TRACK_NOT_FOUND", "Not found", "No track with that id.")



@router.get("/recommendations", response_model=RecommendationPage, responses={401: UNAUTHORIZED})
async def recommendations(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> RecommendationPage:
    """Tracks for the caller, each with a `reason`: tags of what they like and play, and what
    people who liked the same tracks also liked; never their own tracks nor what they liked or
    played lately. New listeners get trending tracks. Computed at most every 5 minutes (a like
    refreshes it)."""
    kernel = kernel_of(request)
    entries = await service.for_user(kernel, session, user.id)
    return await service.page(kernel, session, entries, limit=limit, cursor=cursor)


@router.get(
    "/tracks/{track_id}/similar", response_model=RecommendationPage, responses={404: NOT_FOUND}
)
async def similar_tracks(
    track_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    viewer: TrackViewer,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> RecommendationPage:
    """Tracks sharing tags with this one and liked by the same listeners (cached 5 minutes);
    404 if the caller may not see the track."""
    kernel = kernel_of(request)
    track = await visible_track(kernel, session, track_id, viewer)
    entries = await service.similar(kernel, session, track)
    return await service.page(kernel, session, entries, limit=limit, cursor=cursor)
