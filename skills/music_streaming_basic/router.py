"""Track routes: detail with a stream URL, redirect to the bytes, owner edits, user lists."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse

from core.db import SessionDep
from core.kernel import kernel_of
from core.pagination import Cursor, Limit, Page, decode_cursor, encode_cursor
from skills.music_streaming_basic import service
from skills.music_streaming_basic.api import TrackViewer
from skills.music_streaming_basic.schemas import TrackDetail, TrackRead, TrackUpdate
from skills.music_streaming_basic.service import Viewer
from skills.user_profile.api import ActiveUser

router = APIRouter(tags=["music-streaming-basic"])
NOT_FOUND = {404: {"description": "No such track, or not visible to the caller"}}


async def owner_viewer(user: ActiveUser, request: Request) -> Viewer:
    """Writers: an active (not banned) account."""
    principal = request.state.principal
    return Viewer(profile_id=user.id, is_moderator=principal.is_moderator)


Writer = Annotated[Viewer, Depends(owner_viewer)]


@router.get("/tracks/{track_id}", response_model=TrackDetail, responses=NOT_FOUND)
async def get_track(track_id: uuid.UUID, request: Request, viewer: TrackViewer) -> TrackRead:
    """Metadata, counts, waveform and a short-lived ``stream_url``."""
    kernel = kernel_of(request)  # no request session: a cache miss reads in autocommit
    return await service.to_read(
        kernel, await service.visible(kernel, None, track_id, viewer), detail=True
    )


@router.get(
    "/tracks/{track_id}/stream",
    status_code=302,
    response_class=RedirectResponse,
    responses={302: {"description": "Redirect to the audio bytes"}, **NOT_FOUND},
)
async def stream(track_id: uuid.UUID, request: Request, viewer: TrackViewer) -> RedirectResponse:
    """302 to the same short-lived URL as ``stream_url``."""
    url = await service.stream_url(kernel_of(request), None, track_id, viewer)
    return RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})


@router.patch("/tracks/{track_id}", response_model=TrackDetail, responses=NOT_FOUND)
async def update_track(
    track_id: uuid.UUID, changes: TrackUpdate, request: Request, session: SessionDep, viewer: Writer
) -> TrackRead:
    """Owner only: title, artist, description, tags, mood, visibility."""
    kernel = kernel_of(request)
    data = await service.update(kernel, session, track_id, viewer, changes)
    return await service.to_read(kernel, data, detail=True)


@router.delete("/tracks/{track_id}", status_code=204, responses=NOT_FOUND)
async def delete_track(
    track_id: uuid.UUID, request: Request, session: SessionDep, viewer: Writer
) -> Response:
    """Owner only: removes the track, its likes, comments, playlist entries, history, files."""
    await service.delete(kernel_of(request), session, track_id, viewer)
    return Response(status_code=204)


@router.get(
    "/users/{user_id}/tracks",
    response_model=Page[TrackRead],
    responses={404: {"description": "No such user, or not visible to the caller"}},
)
async def user_tracks(
    user_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    viewer: TrackViewer,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[TrackRead]:
    """Newest first. The owner also sees processing, failed, private and hidden tracks."""
    position = decode_cursor(cursor, arity=2)
    after = (datetime.fromisoformat(position[0]), uuid.UUID(position[1])) if position else None
    items = await service.list_for_owner(
        kernel_of(request), session, user_id, viewer, after=after, limit=limit + 1
    )
    next_cursor = None
    if len(items) > limit:
        items = items[:limit]
        last = items[-1]
        next_cursor = encode_cursor([last.created_at.isoformat(), str(last.id)])
    return Page[TrackRead](items=items, next_cursor=next_cursor)
