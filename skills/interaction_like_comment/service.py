"""Like and comment rules: one transaction per write, counters and events inside it.

Counters stay exact because they move only with a row that really changed: like is
``INSERT … ON CONFLICT DO NOTHING RETURNING`` and adds 1 only if a row came back, unlike is
``DELETE … RETURNING``; a comment's deletion subtracts exactly the rows its ``DELETE``
returned. The track row is locked ``FOR KEY SHARE`` first, by the statement that also checks
the viewer may see it, so it cannot vanish mid-way (a 404, never a foreign-key 500), while the
counter ``UPDATE`` itself serialises concurrent writers. After the commit the same deltas go
to the cached track (``counters_changed``), which keeps its metadata.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import Forbidden, NotFound, ValidationFailed
from core.events import emit, events_committed
from core.pagination import decode_cursor, encode_cursor
from skills.interaction_like_comment import repository as repo
from skills.interaction_like_comment.models import Comment
from skills.interaction_like_comment.repository import Order
from skills.interaction_like_comment.schemas import (
    CommentCreate,
    CommentRead,
    LikedTrack,
    Liker,
    LikeState,
    comment_read,
)
from skills.music_streaming_basic import api as tracks
from skills.music_streaming_basic.api import Viewer
from skills.user_profile.api import ProfileRead

if TYPE_CHECKING:
    from core.kernel import Kernel


def comment_not_found() -> NotFound:
    return NotFound("No comment with that id.", code="COMMENT_NOT_FOUND")


def invalid_cursor() -> ValidationFailed:
    return ValidationFailed("The cursor is not valid for this list.", code="INVALID_CURSOR")


# -- likes ----------------------------------------------------------------------------------
async def set_like(kernel: Kernel, track_id: uuid.UUID, viewer: Viewer, liked: bool) -> LikeState:
    """Like (or unlike) a track the viewer can see; repeats change nothing and answer the same.

    One statement in autocommit (``repository._set_like_statement``) checks visibility while
    locking the track, changes the like, moves the counter and records the event, so all of
    it commits or none does, in one round trip and without an ORM session. The new count
    comes back from the counter's ``UPDATE … RETURNING`` (or from the locked row when nothing
    changed). The cached track keeps its metadata; only the delta is applied after."""
    assert viewer.profile_id is not None
    async with kernel.db.autocommit() as conn:
        row = await repo.set_like(
            conn, track_id, viewer.profile_id, liked=liked, moderator=viewer.is_moderator
        )
    if row is None:
        raise tracks.track_not_found()
    before, after = row
    if after is None:  # already (un)liked: nothing changed
        return LikeState(liked=liked, like_count=before)
    await events_committed(kernel)
    await tracks.counters_changed(kernel, track_id, likes=1 if liked else -1)
    return LikeState(liked=liked, like_count=after)


async def like_state(
    kernel: Kernel, session: AsyncSession, track_id: uuid.UUID, viewer: Viewer
) -> LikeState:
    assert viewer.profile_id is not None
    await tracks.visible_track(kernel, session, track_id, viewer)
    async with session.begin():
        liked = await repo.is_liked(session, track_id, viewer.profile_id)
        counts = await repo.track_counts(session, track_id)
    if counts is None:
        raise tracks.track_not_found()
    return LikeState(liked=liked, like_count=counts.like_count)


def _decode(cursor: str | None, tag: str, arity: int) -> list[Any] | None:
    """Keyset values of a cursor issued for this list (tag), timestamps and ids parsed."""
    values = decode_cursor(cursor, arity=arity + 1)
    if values is None:
        return None
    if values[0] != tag:
        raise invalid_cursor()
    try:
        *head, created_at, row_id = values[1:]
        return [*(int(v) for v in head), datetime.fromisoformat(created_at), uuid.UUID(row_id)]
    except (TypeError, ValueError):
        raise invalid_cursor() from None


def _encode(tag: str, key: list[Any]) -> str:
    return encode_cursor([tag, *(v.isoformat() if isinstance(v, datetime) else v for v in key)])


async def likers(
    kernel: Kernel,
    session: AsyncSession,
    track_id: uuid.UUID,
    viewer: Viewer,
    *,
    cursor: str | None,
    limit: int,
) -> tuple[list[Liker], str | None]:
    """Who liked a visible track, newest like first (banned/deleted accounts left out)."""
    after = _decode(cursor, "l", 2)
    await tracks.visible_track(kernel, session, track_id, viewer)
    async with session.begin():
        rows = await repo.likers(
            session, track_id, include_banned=viewer.is_moderator, after=after, limit=limit + 1
        )
    items = [
        Liker.model_validate(
            {**ProfileRead.model_validate(profile).model_dump(), "liked_at": liked_at}
        )
        for profile, liked_at, _ in rows[:limit]
    ]
    more = len(rows) > limit
    return items, _encode("l", [rows[limit - 1][1], rows[limit - 1][2]]) if more else None


async def liked_tracks(
    kernel: Kernel, session: AsyncSession, viewer: Viewer, *, cursor: str | None, limit: int
) -> tuple[list[LikedTrack], str | None]:
    """The viewer's likes, newest first, of tracks the viewer may still open."""
    assert viewer.profile_id is not None
    after = _decode(cursor, "m", 2)
    async with session.begin():
        rows = await repo.liked_tracks(
            session,
            viewer.profile_id,
            moderator=viewer.is_moderator,
            after=after,
            limit=limit + 1,
        )
        reads = await tracks.track_reads(kernel, session, [row[0] for row in rows[:limit]])
    items = [
        LikedTrack.model_validate({**read.model_dump(), "liked_at": row[1]})
        for read, row in zip(reads, rows, strict=False)
    ]
    more = len(rows) > limit
    return items, _encode("m", [rows[limit - 1][1], rows[limit - 1][2]]) if more else None


# -- comments -------------------------------------------------------------------------------
async def _track_of_comment(
    kernel: Kernel, session: AsyncSession, comment_id: uuid.UUID, viewer: Viewer
) -> tuple[CommentRead, dict[str, Any]]:
    """A comment the viewer may see, with its (visible) track; else 404 COMMENT_NOT_FOUND."""
    async with session.begin():
        row = await repo.comment_with_author(
            session, comment_id, viewer.profile_id, viewer.is_moderator
        )
    if row is None:
        raise comment_not_found()
    try:
        track = await tracks.visible_track(kernel, session, row[0].track_id, viewer)
    except NotFound:
        raise comment_not_found() from None
    return comment_read(*row), track


async def read_comment(
    kernel: Kernel, session: AsyncSession, comment_id: uuid.UUID, viewer: Viewer
) -> CommentRead:
    return (await _track_of_comment(kernel, session, comment_id, viewer))[0]


def _check_position(position_ms: int | None, duration_ms: int | None) -> None:
    if position_ms is not None and duration_ms is not None and position_ms > duration_ms:
        raise ValidationFailed(
            f"position_ms must be between 0 and the track's duration ({duration_ms} ms).",
            code="INVALID_POSITION",
        )


async def _check_parent(
    session: AsyncSession, parent_id: uuid.UUID, track_id: uuid.UUID, viewer: Viewer
) -> uuid.UUID:
    """The parent's author, if the parent is a top-level comment of this track the viewer
    may see (locked against deletion until commit); else 422 ``INVALID_PARENT``."""
    parent = await repo.lock_parent(session, parent_id)
    own = parent is not None and parent.author_id == viewer.profile_id
    visible = parent is not None and (
        own
        or viewer.is_moderator
        or not (parent.hidden or parent.is_banned or parent.deleted_at is not None)
    )
    if parent is None or not visible or parent.track_id != track_id or parent.parent_id:
        raise ValidationFailed(
            "parent_id must be a top-level comment of the same track (one level of replies).",
            code="INVALID_PARENT",
        )
    return parent.author_id  # type: ignore[no-any-return]


async def create_comment(
    kernel: Kernel, session: AsyncSession, track_id: uuid.UUID, viewer: Viewer, data: CommentCreate
) -> CommentRead:
    """Comment on (or reply in) a track the viewer can see; ``comment_count`` +1."""
    assert viewer.profile_id is not None
    async with session.begin():
        track = await repo.lock_track(session, track_id, viewer.profile_id, viewer.is_moderator)
        if track is None:
            raise tracks.track_not_found()
        _check_position(data.position_ms, track.duration_ms)
        parent_author, now = None, datetime.now(UTC)
        if data.parent_id is not None:
            parent_author = await _check_parent(session, data.parent_id, track_id, viewer)
        comment = await repo.insert_comment(
            session,
            Comment(
                track_id=track_id,
                author_id=viewer.profile_id,
                body=data.body,
                position_ms=data.position_ms,
                parent_id=data.parent_id,
                created_at=now,
                updated_at=now,  # equal until edited, so clients can show "edited"
            ),
        )
        await tracks.adjust_track_counters(session, track_id, comments=+1)
        emit(
            session,
            "comment.created",
            {
                "comment_id": str(comment.id),
                "track_id": str(track_id),
                "author_id": str(viewer.profile_id),
                "owner_id": str(track.owner_id),
                "parent_id": str(data.parent_id) if data.parent_id else None,
                "parent_author_id": str(parent_author) if parent_author else None,
            },
        )
        row = await repo.comment_with_author(
            session, comment.id, viewer.profile_id, viewer.is_moderator
        )
    await tracks.counters_changed(kernel, track_id, comments=+1)
    assert row is not None
    return comment_read(*row)


async def edit_comment(
    kernel: Kernel, session: AsyncSession, comment_id: uuid.UUID, viewer: Viewer, body: str
) -> CommentRead:
    """Author only: 404 if the caller cannot see it, 403 ``NOT_COMMENT_AUTHOR`` otherwise."""
    current, _ = await _track_of_comment(kernel, session, comment_id, viewer)
    if current.author_id != viewer.profile_id:
        raise Forbidden("Only the comment's author can edit it.", code="NOT_COMMENT_AUTHOR")
    async with session.begin():
        if await repo.get_comment(session, comment_id, lock=True) is None:
            raise comment_not_found()
        await repo.update_body(session, comment_id, body, datetime.now(UTC))
        emit(
            session,
            "comment.updated",
            {
                "comment_id": str(comment_id),
                "track_id": str(current.track_id),
                "author_id": str(current.author_id),
            },
        )
        row = await repo.comment_with_author(
            session, comment_id, viewer.profile_id, viewer.is_moderator
        )
    assert row is not None
    return comment_read(*row)


async def delete_comment(
    kernel: Kernel, session: AsyncSession, comment_id: uuid.UUID, viewer: Viewer
) -> int:
    """The author or the track's owner deletes a comment and its replies; how many went."""
    current, track = await _track_of_comment(kernel, session, comment_id, viewer)
    if current.author_id != viewer.profile_id and not viewer.owns(track):
        raise Forbidden(
            "Only the comment's author or the track's owner can delete it.",
            code="NOT_COMMENT_AUTHOR",
        )
    removed = await remove_comment(kernel, session, comment_id, actor_id=viewer.profile_id)
    if not removed:
        raise comment_not_found()
    return removed


async def remove_comment(
    kernel: Kernel, session: AsyncSession, comment_id: uuid.UUID, *, actor_id: uuid.UUID | None
) -> int:
    """Delete a comment and its replies whoever asks; ``comment_count`` drops by exactly the
    rows removed. Locking the comment first makes new replies wait, then fail their parent
    check, so the ``DELETE`` (a later statement, a fresh snapshot) sees every reply there is."""
    async with session.begin():
        comment = await repo.get_comment(session, comment_id, lock=True)
        if comment is None:
            return 0
        removed = await repo.delete_thread(session, comment_id)
        await tracks.adjust_track_counters(session, comment.track_id, comments=-len(removed))
        emit(
            session,
            "comment.deleted",
            {
                "comment_id": str(comment_id),
                "track_id": str(comment.track_id),
                "author_id": str(comment.author_id),
                "actor_id": str(actor_id) if actor_id else None,
                "removed": len(removed),
            },
        )
    await tracks.counters_changed(kernel, comment.track_id, comments=-len(removed))
    return len(removed)


async def list_comments(
    kernel: Kernel,
    session: AsyncSession,
    track_id: uuid.UUID,
    viewer: Viewer,
    *,
    parent_id: uuid.UUID | None,
    sort: Order,
    cursor: str | None,
    limit: int,
) -> tuple[list[CommentRead], str | None]:
    """Top-level comments (newest first, or by position) or one comment's replies (oldest
    first), only what the viewer may see."""
    order: Order = "replies" if parent_id is not None else sort
    tag = order[0]
    after = _decode(cursor, tag, 3 if order == "position" else 2)
    await tracks.visible_track(kernel, session, track_id, viewer)
    async with session.begin():
        if parent_id is not None:
            parent = await repo.comment_with_author(
                session, parent_id, viewer.profile_id, viewer.is_moderator
            )
            if parent is None or parent[0].track_id != track_id or parent[0].parent_id:
                raise comment_not_found()
        rows = await repo.comments(
            session,
            track_id,
            parent_id=parent_id,
            order=order,
            viewer_id=viewer.profile_id,
            moderator=viewer.is_moderator,
            after=after,
            limit=limit + 1,
        )
    items = [comment_read(row[0], row[1], row[2]) for row in rows[:limit]]
    if len(rows) <= limit:
        return items, None
    return items, _encode(tag, list(rows[limit - 1][3:]))
