"""SQL for ``likes`` and ``comments`` (and the track/profile columns they read or lock); no
rules, no transactions. Lists are keyset-paginated on the indexes declared in ``models``."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Row,
    Text,
    and_,
    bindparam,
    cast,
    delete,
    exists,
    func,
    literal_column,
    or_,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from core.events import outbox_insert
from skills.interaction_like_comment.models import Comment, Like
from skills.music_streaming_basic import api as tracks
from skills.music_streaming_basic.api import Track
from skills.user_profile.api import UserProfile, visible_condition

L = Like.__table__.c  # type: ignore[attr-defined]
C = Comment.__table__.c  # type: ignore[attr-defined]
T = Track.__table__.c  # type: ignore[attr-defined]
P = UserProfile.__table__.c  # type: ignore[attr-defined]
LAST = 2**31 - 1
"""Sort key of comments without a position (after every position)."""

Order = Literal["newest", "position", "replies"]
AnyRow = Row[*tuple[Any, ...]]


# -- tracks -------------------------------------------------------------------------------
@functools.cache
def _lock_statement(moderator: bool, signed_in: bool) -> Any:
    """Built once per kind of viewer (building it per request costs more CPU than running it);
    parameters ``track_id`` and, for a signed-in viewer, ``viewer_id``."""
    return (
        select(T.owner_id, T.duration_ms, T.like_count)
        .join(UserProfile, P.id == T.owner_id)
        .where(
            T.id == bindparam("track_id"),
            tracks.viewable_condition_param(moderator=moderator, signed_in=signed_in),
        )
        .with_for_update(read=True, key_share=True, of=Track.__table__)  # type: ignore[attr-defined]
    )


async def lock_track(
    session: AsyncSession, track_id: uuid.UUID, viewer_id: uuid.UUID | None, moderator: bool
) -> AnyRow | None:
    """``(owner_id, duration_ms, like_count)`` of the track if the viewer may see it
    (music-streaming-basic's rule, on the track and its owner's profile), locked ``FOR KEY
    SHARE OF tracks`` so it cannot be deleted before the commit (the lock the foreign key
    takes; counter updates do not wait on it). Visibility and lock in one round trip, inside
    the write's transaction."""
    params: dict[str, Any] = {"track_id": track_id}
    if viewer_id is not None:
        params["viewer_id"] = viewer_id
    statement = _lock_statement(moderator, viewer_id is not None)
    return (await session.execute(statement, params)).first()


async def track_counts(session: AsyncSession, track_id: uuid.UUID) -> AnyRow | None:
    return (
        await session.execute(select(T.like_count, T.comment_count).where(T.id == track_id))
    ).first()


def viewable_track(viewer_id: uuid.UUID | None, moderator: bool) -> ColumnElement[bool]:
    """Tracks a viewer may open (mirrors music-streaming-basic's ``can_view``); join
    ``UserProfile`` on ``Track.owner_id`` first."""
    if moderator:
        return true()
    others = and_(
        T.status == "ready",
        # two comparisons, not IN (…): an IN list is an "expanding" parameter that SQLAlchemy
        # re-renders into the SQL on every execution of a statement built once
        or_(T.visibility == "public", T.visibility == "unlisted"),
        T.is_hidden.is_(False),
        visible_condition(),
    )
    return or_(T.owner_id == viewer_id, others) if viewer_id else others


# -- likes --------------------------------------------------------------------------------


@functools.cache
def _set_like_statement(liked: bool, moderator: bool) -> Any:
    """A like or unlike as one statement (so it runs in autocommit, one round trip): lock the
    track if the viewer may see it (``target``), insert or delete the like (``changed``), add
    the delta to the counter and record the event only if that changed something. Answers
    one row ``(like_count before, like_count after or NULL)``, none when the track is not
    visible. Parameters: ``track_id``, ``viewer_id``, ``like_id`` (liking only), ``delta_like``.
    """
    target = _lock_statement(moderator, True).cte("target")
    if liked:
        new_row: Any = select(bindparam("like_id"), bindparam("track_id"), bindparam("viewer_id"))
        changed = (
            insert(Like.__table__)  # type: ignore[attr-defined]
            .from_select(["id", "track_id", "user_id"], new_row.select_from(target))
            .on_conflict_do_nothing(constraint="uq_likes_track_user")
            .returning(L.id)
            .cte("changed")
        )
    else:
        changed = (
            delete(Like.__table__)  # type: ignore[attr-defined]
            .where(
                L.track_id == bindparam("track_id"),
                L.user_id == bindparam("viewer_id"),
                exists(select(literal_column("1")).select_from(target)),
            )
            .returning(L.id)
            .cte("changed")
        )
    counted = (
        tracks.adjust_counters_statement("like")
        .where(exists(select(literal_column("1")).select_from(changed)))
        .cte("counted")
    )
    event = outbox_insert(
        "track.liked" if liked else "track.unliked",
        {
            "track_id": cast(bindparam("track_id"), Text),
            "user_id": cast(bindparam("viewer_id"), Text),
            "owner_id": cast(target.c.owner_id, Text),
        },
        target.join(changed, true()),
    ).cte("event")
    after = select(counted.c.like_count).scalar_subquery()
    return select(target.c.like_count, after).select_from(target).add_cte(event)


async def set_like(
    conn: AsyncConnection,
    track_id: uuid.UUID,
    viewer_id: uuid.UUID,
    *,
    liked: bool,
    moderator: bool,
) -> AnyRow | None:
    """Run :func:`_set_like_statement`: ``(like_count before, after or None)``, or ``None``
    when the viewer cannot see the track."""
    params: dict[str, Any] = {
        "track_id": track_id,
        "viewer_id": viewer_id,
        "delta_like": 1 if liked else -1,
    }
    if liked:
        params["like_id"] = uuid.uuid4()
    return (await conn.execute(_set_like_statement(liked, moderator), params)).first()


async def is_liked(session: AsyncSession, track_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    found = await session.scalar(select(L.id).where(L.track_id == track_id, L.user_id == user_id))
    return found is not None


async def likers(
    session: AsyncSession,
    track_id: uuid.UUID,
    *,
    include_banned: bool,
    after: Sequence[Any] | None,
    limit: int,
) -> list[AnyRow]:
    """``(UserProfile, liked_at, like_id)`` newest like first, visible accounts only."""
    query = (
        select(UserProfile, L.created_at, L.id)
        .join(Like, L.user_id == P.id)
        .where(L.track_id == track_id, visible_condition(include_banned=include_banned))
    )
    if after is not None:
        query = query.where(tuple_(L.created_at, L.id) < tuple_(*after))
    query = query.order_by(L.created_at.desc(), L.id.desc()).limit(limit)
    return list((await session.execute(query)).all())


async def liked_tracks(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    moderator: bool,
    after: Sequence[Any] | None,
    limit: int,
) -> list[AnyRow]:
    """``(Track, liked_at, like_id)`` newest like first, tracks the user may still open."""
    query = (
        select(Track, L.created_at, L.id)
        .join(Like, L.track_id == T.id)
        .join(UserProfile, P.id == T.owner_id)
        .where(L.user_id == user_id, viewable_track(user_id, moderator))
    )
    if after is not None:
        query = query.where(tuple_(L.created_at, L.id) < tuple_(*after))
    query = query.order_by(L.created_at.desc(), L.id.desc()).limit(limit)
    return list((await session.execute(query)).all())


# -- comments -------------------------------------------------------------------------------
def visible_comment(
    comments: Any, viewer_id: uuid.UUID | None, moderator: bool
) -> ColumnElement[bool]:
    """Comments a viewer may see: not hidden and by a visible account — except that authors
    always see their own, and moderators also see hidden ones and banned authors'. Join
    ``UserProfile`` on the author first."""
    shown = visible_condition(include_banned=moderator)
    if not moderator:
        shown = and_(shown, comments.hidden.is_(False))
    return or_(comments.author_id == viewer_id, shown) if viewer_id else shown


async def insert_comment(session: AsyncSession, comment: Comment) -> Comment:
    session.add(comment)
    await session.flush()
    return comment


async def get_comment(
    session: AsyncSession, comment_id: uuid.UUID, *, lock: bool = False
) -> Comment | None:
    query = select(Comment).where(C.id == comment_id)
    if lock:
        query = query.with_for_update()
    return (await session.scalars(query)).first()


async def lock_parent(session: AsyncSession, comment_id: uuid.UUID) -> AnyRow | None:
    """A would-be parent with its author's state, locked ``FOR KEY SHARE`` so that deleting it
    (which locks ``FOR UPDATE`` first) waits for this reply, then removes and counts it."""
    query = (
        select(C.track_id, C.parent_id, C.author_id, C.hidden, P.is_banned, P.deleted_at)
        .join(UserProfile, P.id == C.author_id)
        .where(C.id == comment_id)
        .with_for_update(read=True, key_share=True, of=Comment.__table__)  # type: ignore[attr-defined]
    )
    return (await session.execute(query)).first()


async def comment_with_author(
    session: AsyncSession, comment_id: uuid.UUID, viewer_id: uuid.UUID | None, moderator: bool
) -> AnyRow | None:
    """``(Comment, UserProfile, reply_count)`` if the viewer may see the comment."""
    query = (
        select(Comment, UserProfile, _reply_count(viewer_id, moderator))
        .join(UserProfile, P.id == C.author_id)
        .where(C.id == comment_id, visible_comment(C, viewer_id, moderator))
    )
    return (await session.execute(query)).first()


async def update_body(
    session: AsyncSession, comment_id: uuid.UUID, body: str, now: datetime
) -> None:
    await session.execute(
        update(Comment.__table__)  # type: ignore[attr-defined]
        .where(C.id == comment_id)
        .values(body=body, updated_at=now)
    )


async def delete_thread(session: AsyncSession, comment_id: uuid.UUID) -> list[uuid.UUID]:
    """Delete a comment and its replies; the ids removed. Lock the comment first (in an earlier
    statement) so this statement's snapshot contains every reply that will ever exist."""
    result = await session.execute(
        delete(Comment.__table__)  # type: ignore[attr-defined]
        .where(or_(C.id == comment_id, C.parent_id == comment_id))
        .returning(C.id)
    )
    return list(result.scalars().all())


async def set_hidden(session: AsyncSession, comment_id: uuid.UUID, hidden: bool) -> bool:
    """``True`` only if the flag actually changed."""
    result = await session.execute(
        update(Comment.__table__)  # type: ignore[attr-defined]
        .where(C.id == comment_id, C.hidden.is_not(hidden))
        .values(hidden=hidden)
        .returning(C.id)
    )
    return result.scalar_one_or_none() is not None


def _reply_count(viewer_id: uuid.UUID | None, moderator: bool) -> Any:
    """Correlated count of the replies (to the outer ``comments`` row) the viewer may see.

    Inside the subquery the unaliased ``user_profiles`` is the replies' authors (SQL scoping),
    so ``visible_condition`` applies to them."""
    replies = Comment.__table__.alias("replies")  # type: ignore[attr-defined]
    return (
        select(func.count())
        .select_from(replies.join(UserProfile.__table__, P.id == replies.c.author_id))  # type: ignore[attr-defined]
        .where(replies.c.parent_id == C.id, visible_comment(replies.c, viewer_id, moderator))
        .correlate(Comment.__table__)  # type: ignore[attr-defined]
        .scalar_subquery()
    )


def sort_key(order: Order) -> list[Any]:
    if order == "position":
        return [func.coalesce(C.position_ms, LAST), C.created_at, C.id]
    return [C.created_at, C.id]


async def comments(
    session: AsyncSession,
    track_id: uuid.UUID,
    *,
    parent_id: uuid.UUID | None,
    order: Order,
    viewer_id: uuid.UUID | None,
    moderator: bool,
    after: Sequence[Any] | None,
    limit: int,
) -> list[AnyRow]:
    """``(Comment, UserProfile, reply_count)``: top-level comments (``parent_id`` None) newest
    first or by position, or the replies to ``parent_id`` oldest first."""
    parent = C.parent_id.is_(None) if parent_id is None else C.parent_id == parent_id
    key = sort_key(order)
    query = (
        select(Comment, UserProfile, _reply_count(viewer_id, moderator), *key)
        .join(UserProfile, P.id == C.author_id)
        .where(C.track_id == track_id, parent, visible_comment(C, viewer_id, moderator))
    )
    if order == "newest":
        if after is not None:
            query = query.where(tuple_(*key) < tuple_(*after))
        query = query.order_by(*(column.desc() for column in key))
    else:
        if after is not None:
            query = query.where(tuple_(*key) > tuple_(*after))
        query = query.order_by(*key)
    return list((await session.execute(query.limit(limit))).all())
