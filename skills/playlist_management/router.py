"""Playlist routes (SPEC §5 "Playlists"). Writes need an active (not banned) account."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request, Response

from core.db import SessionDep
from core.errors import problem_doc_of
from core.kernel import kernel_of
from core.pagination import Cursor, Limit, Page, decode_cursor, encode_cursor
from skills.music_streaming_basic.api import TrackViewer, Viewer
from skills.playlist_management import entries, service
from skills.playlist_management.schemas import (
    EntryAdd,
    EntryMove,
    ForkRequest,
    PlaylistCreate,
    PlaylistDetail,
    PlaylistEntry,
    PlaylistRead,
    PlaylistUpdate,
)
from skills.user_profile.api import ActiveUser

router = APIRouter(tags=["playlist-management"])
SKILL = "playlist-management"


Responses = dict[int | str, dict[str, Any]]


READ: Responses = {
    404: problem_doc_of(
        404,
        "PLAYLIST_NOT_FOUND",
        "No playlist with that id.",
        "No such playlist, or not visible to the caller (PLAYLIST_NOT_FOUND)",
    )
}
WRITE: Responses = {
    **READ,
    403: problem_doc_of(
        403,
        "NOT_PLAYLIST_OWNER",
        "Only the playlist's owner can change it.",
        "Not the owner (NOT_PLAYLIST_OWNER), or a banned account (ACCOUNT_BANNED)",
    ),
}


async def writer(user: ActiveUser, request: Request) -> Viewer:
    """Writers: an active (not banned) account; banned ones got 403 before this."""
    return Viewer(profile_id=user.id, is_moderator=request.state.principal.is_moderator)


Writer = Annotated[Viewer, Depends(writer)]


def max_tracks(request: Request) -> int:
    return int(kernel_of(request).skill_settings(SKILL).max_tracks)


@router.post("/playlists", status_code=201, response_model=PlaylistRead, responses=WRITE)
async def create_playlist(
    body: PlaylistCreate, response: Response, session: SessionDep, viewer: Writer
) -> PlaylistRead:
    """A new, empty playlist owned by the caller (default visibility ``public``)."""
    playlist = await service.create(session, viewer, body)
    response.headers["Location"] = f"/api/v1/playlists/{playlist.id}"
    return PlaylistRead.model_validate(playlist)


@router.get("/playlists/{playlist_id}", response_model=PlaylistDetail, responses=READ)
async def get_playlist(
    playlist_id: uuid.UUID, request: Request, session: SessionDep, viewer: TrackViewer
) -> PlaylistDetail:
    """The playlist and its entries by position. Unlisted: anyone with the id; private: the
    owner and moderators. Tracks the viewer may not see are left out (positions as stored)."""
    return await service.detail(kernel_of(request), session, playlist_id, viewer)


@router.patch("/playlists/{playlist_id}", response_model=PlaylistRead, responses=WRITE)
async def update_playlist(
    playlist_id: uuid.UUID, changes: PlaylistUpdate, session: SessionDep, viewer: Writer
) -> PlaylistRead:
    """Owner only: title, description, visibility; any other field is 422."""
    return PlaylistRead.model_validate(await service.update(session, playlist_id, viewer, changes))


@router.delete("/playlists/{playlist_id}", status_code=204, responses=WRITE)
async def delete_playlist(playlist_id: uuid.UUID, session: SessionDep, viewer: Writer) -> Response:
    """Owner only: the playlist and its entries; forks stay (``forked_from_id`` → null)."""
    await service.delete(session, playlist_id, viewer)
    return Response(status_code=204)


@router.get(
    "/users/{user_id}/playlists",
    response_model=Page[PlaylistRead],
    responses={404: problem_doc_of(404, "USER_NOT_FOUND", "No user with that id.")},
)
async def user_playlists(
    user_id: uuid.UUID,
    session: SessionDep,
    viewer: TrackViewer,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[PlaylistRead]:
    """Newest first. The owner (and moderators) see all; others public playlists only."""
    position = decode_cursor(cursor, arity=2)
    after = (datetime.fromisoformat(position[0]), uuid.UUID(position[1])) if position else None
    rows = await service.list_for_owner(session, user_id, viewer, after=after, limit=limit + 1)
    items = [PlaylistRead.model_validate(row) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor([last.created_at.isoformat(), str(last.id)])
    return Page[PlaylistRead](items=items, next_cursor=next_cursor)


@router.post(
    "/playlists/{playlist_id}/tracks",
    status_code=201,
    response_model=PlaylistEntry,
    responses={
        **WRITE,
        409: problem_doc_of(409, "DUPLICATE_RESOURCE", "The track is already in the playlist."),
        422: problem_doc_of(
            422,
            "PLAYLIST_FULL",
            "The playlist is full (SOUNDHIVE_PLAYLIST_MAX_TRACKS).",
            "Position out of range (VALIDATION_FAILED) or full (PLAYLIST_FULL)",
        ),
    },
)
async def add_track(
    playlist_id: uuid.UUID, body: EntryAdd, request: Request, session: SessionDep, viewer: Writer
) -> PlaylistEntry:
    """Owner only: add a track the owner may see, at ``position`` (0 … track_count) or last."""
    return await entries.add(
        kernel_of(request), session, playlist_id, viewer, body, max_tracks=max_tracks(request)
    )


@router.delete("/playlists/{playlist_id}/tracks/{track_id}", status_code=204, responses=WRITE)
async def remove_track(
    playlist_id: uuid.UUID, track_id: uuid.UUID, session: SessionDep, viewer: Writer
) -> Response:
    """Owner only: remove the entry; the entries after it move up by one."""
    await entries.remove(session, playlist_id, viewer, track_id)
    return Response(status_code=204)


@router.patch(
    "/playlists/{playlist_id}/tracks/{track_id}",
    status_code=204,
    responses={**WRITE, 422: problem_doc_of(422, "VALIDATION_FAILED", "Position out of range.")},
)
async def move_track(
    playlist_id: uuid.UUID,
    track_id: uuid.UUID,
    body: EntryMove,
    session: SessionDep,
    viewer: Writer,
) -> Response:
    """Owner only: move the entry to ``position`` (0 … track_count - 1)."""
    await entries.move(session, playlist_id, viewer, track_id, body.position)
    return Response(status_code=204)


@router.post(
    "/playlists/{playlist_id}/fork",
    status_code=201,
    response_model=PlaylistRead,
    responses={
        **WRITE,
        422: problem_doc_of(422, "PLAYLIST_FULL", "The copy would exceed the size limit."),
    },
)
async def fork_playlist(
    playlist_id: uuid.UUID,
    request: Request,
    response: Response,
    session: SessionDep,
    viewer: Writer,
    body: Annotated[ForkRequest | None, Body()] = None,
) -> PlaylistRead:
    """A copy owned by the caller with ``forked_from_id``: title, description, visibility
    (overridable in the body) and the tracks the caller may see. Private playlists of others
    cannot be forked."""
    copy = await service.fork(session, playlist_id, viewer, body, max_tracks=max_tracks(request))
    response.headers["Location"] = f"/api/v1/playlists/{copy.id}"
    return PlaylistRead.model_validate(copy)
