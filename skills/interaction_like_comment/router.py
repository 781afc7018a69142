"""Like and comment routes (SPEC §5 "Likes / comments"): thin, rules live in the service."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from core.db import SessionDep
from core.errors import problem_doc_of
from core.kernel import KernelDep
from core.pagination import Cursor, Limit, Page
from skills.interaction_like_comment import service
from skills.interaction_like_comment.schemas import (
    CommentCreate,
    CommentRead,
    CommentUpdate,
    LikedTrack,
    Liker,
    LikeState,
)
from skills.music_streaming_basic.api import TrackViewer, Viewer
from skills.user_profile.api import ActiveUser, CurrentUser

if TYPE_CHECKING:
    pass

router = APIRouter(tags=["interaction-like-comment"])


def _viewer(user: Any, request: Request) -> Viewer:
    return Viewer(profile_id=user.id, is_moderator=request.state.principal.is_moderator)


async def writer(user: ActiveUser, request: Request) -> Viewer:
    """Writers: an active (not banned, not deleted) account."""
    return _viewer(user, request)


async def reader(user: CurrentUser, request: Request) -> Viewer:
    """Signed-in readers (banned accounts may still read)."""
    return _viewer(user, request)


Writer = Annotated[Viewer, Depends(writer)]
Reader = Annotated[Viewer, Depends(reader)]


AUTH = problem_doc_of(401, "UNAUTHORIZED", "Authentication required.")
BANNED = problem_doc_of(403, "ACCOUNT_BANNED", "This account is banned and cannot make changes.")
TRACK_404 = problem_doc_of(404, "TRACK_NOT_FOUND", "No track with that id.")
COMMENT_404 = problem_doc_of(404, "COMMENT_NOT_FOUND", "No comment with that id.")
NOT_AUTHOR = problem_doc_of(403, "NOT_COMMENT_AUTHOR", "Only the comment's author can edit it.")
INVALID = problem_doc_of(
    422, "INVALID_PARENT", "parent_id must be a top-level comment of the track."
)
WRITE: dict[int | str, dict[str, Any]] = {401: AUTH, 403: BANNED, 404: TRACK_404}


@router.post("/tracks/{track_id}/like", response_model=LikeState, responses=WRITE)
async def like(track_id: uuid.UUID, kernel: KernelDep, viewer: Writer) -> LikeState:
    """Like a track (idempotent: a repeat changes nothing and answers the same)."""
    return await service.set_like(kernel, track_id, viewer, True)


@router.delete("/tracks/{track_id}/like", response_model=LikeState, responses=WRITE)
async def unlike(track_id: uuid.UUID, kernel: KernelDep, viewer: Writer) -> LikeState:
    """Remove the caller's like (idempotent)."""
    return await service.set_like(kernel, track_id, viewer, False)


@router.get("/tracks/{track_id}/like", response_model=LikeState, responses={404: TRACK_404})
async def like_state(
    track_id: uuid.UUID, session: SessionDep, kernel: KernelDep, viewer: Reader
) -> LikeState:
    """Whether the caller likes the track, with its like count."""
    return await service.like_state(kernel, session, track_id, viewer)


@router.get("/tracks/{track_id}/likes", response_model=Page[Liker], responses={404: TRACK_404})
async def likers(
    track_id: uuid.UUID,
    session: SessionDep,
    kernel: KernelDep,
    viewer: TrackViewer,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[Liker]:
    """Profiles that liked the track, newest like first (banned/deleted accounts left out)."""
    items, next_cursor = await service.likers(
        kernel, session, track_id, viewer, cursor=cursor, limit=limit
    )
    return Page[Liker](items=items, next_cursor=next_cursor)


@router.get("/users/me/likes", response_model=Page[LikedTrack], responses={401: AUTH})
async def my_likes(
    session: SessionDep, kernel: KernelDep, viewer: Reader, limit: Limit = 20, cursor: Cursor = None
) -> Page[LikedTrack]:
    """Tracks the caller liked, newest like first; tracks they can no longer open are left out."""
    items, next_cursor = await service.liked_tracks(
        kernel, session, viewer, cursor=cursor, limit=limit
    )
    return Page[LikedTrack](items=items, next_cursor=next_cursor)


@router.get(
    "/tracks/{track_id}/comments",
    response_model=Page[CommentRead],
    responses={404: TRACK_404},
)
async def list_comments(
    track_id: uuid.UUID,
    session: SessionDep,
    kernel: KernelDep,
    viewer: TrackViewer,
    sort: Annotated[
        Literal["newest", "position"],
        Query(description="Top level: newest first, or by position_ms (unpositioned last)."),
    ] = "newest",
    parent_id: Annotated[
        uuid.UUID | None, Query(description="List this comment's replies, oldest first.")
    ] = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[CommentRead]:
    """Top-level comments with their ``reply_count``, or one comment's replies."""
    items, next_cursor = await service.list_comments(
        kernel,
        session,
        track_id,
        viewer,
        parent_id=parent_id,
        sort=sort,
        cursor=cursor,
        limit=limit,
    )
    return Page[CommentRead](items=items, next_cursor=next_cursor)


@router.post(
    "/tracks/{track_id}/comments",
    status_code=201,
    response_model=CommentRead,
    responses={**WRITE, 422: INVALID},
)
async def create_comment(
    track_id: uuid.UUID,
    data: CommentCreate,
    session: SessionDep,
    kernel: KernelDep,
    viewer: Writer,
) -> CommentRead:
    """Comment on a track, optionally at ``position_ms``, or reply with ``parent_id``."""
    return await service.create_comment(kernel, session, track_id, viewer, data)


@router.get("/comments/{comment_id}", response_model=CommentRead, responses={404: COMMENT_404})
async def get_comment(
    comment_id: uuid.UUID, session: SessionDep, kernel: KernelDep, viewer: TrackViewer
) -> CommentRead:
    """One comment (e.g. from a notification's ``comment_id``)."""
    return await service.read_comment(kernel, session, comment_id, viewer)


@router.patch(
    "/comments/{comment_id}",
    response_model=CommentRead,
    responses={401: AUTH, 403: NOT_AUTHOR, 404: COMMENT_404},
)
async def edit_comment(
    comment_id: uuid.UUID,
    data: CommentUpdate,
    session: SessionDep,
    kernel: KernelDep,
    viewer: Writer,
) -> CommentRead:
    """The author changes the body (``updated_at`` moves)."""
    return await service.edit_comment(kernel, session, comment_id, viewer, data.body)


@router.delete(
    "/comments/{comment_id}",
    status_code=204,
    responses={401: AUTH, 403: NOT_AUTHOR, 404: COMMENT_404},
)
async def delete_comment(
    comment_id: uuid.UUID, session: SessionDep, kernel: KernelDep, viewer: Writer
) -> Response:
    """The author or the track's owner deletes a comment; its replies go with it."""
    await service.delete_comment(kernel, session, comment_id, viewer)
    return Response(status_code=204)
