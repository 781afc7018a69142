"""SQL for ``notifications``; no rules, no transactions.

Every insert is one ``INSERT … SELECT … WHERE <still true> ON CONFLICT DO NOTHING``: the
checks (actor neither banned nor deleted, the like / comment / follow / public track still
there) and the write happen in one statement, and a redelivered event changes nothing.
Reads join the actor's profile so notifications from banned or deleted accounts stay hidden.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Uuid,
    and_,
    any_,
    cast,
    exists,
    func,
    literal,
    not_,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from skills.interaction_like_comment.api import Comment, Like
from skills.music_streaming_basic.api import Track, Viewer, listable_condition, viewable_condition
from skills.notification_system.models import Notification, NotificationRecipient
from skills.user_follow_system.api import Follow
from skills.user_profile.api import UserProfile, visible_condition

N = Notification.__table__.c  # type: ignore[attr-defined]
NT = Notification.__table__  # type: ignore[attr-defined]
RT = NotificationRecipient.__table__  # type: ignore[attr-defined]
P = UserProfile.__table__.c  # type: ignore[attr-defined]
PT = UserProfile.__table__  # type: ignore[attr-defined]
INSERTED = (N.id, N.seq, N.recipient_id, N.type, N.actor_id, N.track_id, N.comment_id, N.read)
COLUMNS = ["recipient_id", "type", "actor_id", "track_id", "comment_id"]


# -- conditions ---------------------------------------------------------------------------
def actor_visible(actor_id: uuid.UUID) -> ColumnElement[bool]:
    """The actor is neither banned nor deleted (checked when the notification is made)."""
    return exists().where(P.id == actor_id, visible_condition())


def recipient_active(recipient_id: uuid.UUID) -> ColumnElement[bool]:
    """Deleted accounts get nothing; banned ones still do (they may read)."""
    return exists().where(P.id == recipient_id, P.deleted_at.is_(None))


def still_liked(track_id: uuid.UUID, user_id: uuid.UUID) -> ColumnElement[bool]:
    c = Like.__table__.c  # type: ignore[attr-defined]
    return exists().where(c.track_id == track_id, c.user_id == user_id)


def comment_shown(comment_id: uuid.UUID, author_id: uuid.UUID) -> ColumnElement[bool]:
    """The comment still exists and is not hidden by moderation."""
    c = Comment.__table__.c  # type: ignore[attr-defined]
    return exists().where(c.id == comment_id, c.author_id == author_id, c.hidden.is_(False))


def still_following(follower_id: uuid.UUID, following_id: uuid.UUID) -> ColumnElement[bool]:
    c = Follow.__table__.c  # type: ignore[attr-defined]
    return exists().where(c.follower_id == follower_id, c.following_id == following_id)


def track_listable(track_id: uuid.UUID) -> ColumnElement[bool]:
    """Ready, public, not hidden, owner visible: what followers may be told about."""
    t = Track.__table__  # type: ignore[attr-defined]
    return (
        exists()
        .select_from(t.join(PT, P.id == t.c.owner_id))
        .where(t.c.id == track_id, listable_condition())
    )


# -- writes -------------------------------------------------------------------------------
async def hold_recipients(session: AsyncSession, recipient_ids: Sequence[uuid.UUID]) -> None:
    """Lock the recipients' ``notification_recipients`` rows (made on first use) until the
    transaction ends, in id order so two batches never deadlock; call before inserting
    notifications for them (why: ``NotificationRecipient``). Ids without a profile are
    skipped: nothing could be inserted for them anyway."""
    if not recipient_ids:
        return
    wanted = cast(literal(sorted(set(recipient_ids))), ARRAY(Uuid))
    existing = select(P.id, func.now()).where(P.id == any_(wanted)).order_by(P.id)
    stmt = (
        insert(RT)
        .from_select(["recipient_id", "last_notified_at"], existing)
        .on_conflict_do_update(
            index_elements=["recipient_id"], set_={"last_notified_at": func.now()}
        )
    )
    await session.execute(stmt)


async def insert_one(
    session: AsyncSession,
    *,
    recipient_id: uuid.UUID,
    type_: str,
    actor_id: uuid.UUID,
    track_id: uuid.UUID | None,
    comment_id: uuid.UUID | None,
    still: ColumnElement[bool],
) -> Any | None:
    """The new row, or ``None`` if a condition failed or it already existed."""
    values = select(
        literal(recipient_id, Uuid),
        literal(type_),
        literal(actor_id, Uuid),
        literal(track_id, Uuid),
        literal(comment_id, Uuid),
    ).where(actor_visible(actor_id), recipient_active(recipient_id), still)
    stmt = (
        insert(NT)
        .from_select(COLUMNS, values)
        .on_conflict_do_nothing(constraint="uq_notifications_target")
        .returning(*INSERTED, N.created_at)
    )
    return (await session.execute(stmt)).one_or_none()


async def insert_new_track(
    session: AsyncSession,
    recipient_ids: Sequence[uuid.UUID],
    *,
    owner_id: uuid.UUID,
    track_id: uuid.UUID,
) -> Sequence[Any]:
    """``new_track`` rows for one batch of followers in one statement (``unnest`` of the ids);
    nothing if the track is no longer public and ready or its owner was banned."""
    recipients = (
        func.unnest(cast(literal(list(recipient_ids)), ARRAY(Uuid)))
        .table_valued("r")
        .render_derived()
    )
    values = select(
        recipients.c.r,
        literal("new_track"),
        literal(owner_id, Uuid),
        literal(track_id, Uuid),
        literal(None, Uuid),
    ).where(track_listable(track_id), recipients.c.r != owner_id)
    stmt = (
        insert(NT)
        .from_select(COLUMNS, values)
        .on_conflict_do_nothing(constraint="uq_notifications_target")
        .returning(*INSERTED, N.created_at)
    )
    return (await session.execute(stmt)).all()


async def mark_read(session: AsyncSession, notification_id: uuid.UUID) -> None:
    await session.execute(update(NT).where(N.id == notification_id).values(read=True))


async def mark_all_read(session: AsyncSession, recipient_id: uuid.UUID) -> int:
    """Every unread notification of the recipient, hidden actors' included."""
    result = await session.execute(
        update(NT).where(N.recipient_id == recipient_id, not_(N.read)).values(read=True)
    )
    return int(getattr(result, "rowcount", 0) or 0)


# -- reads --------------------------------------------------------------------------------
def subject_visible(recipient_id: uuid.UUID) -> ColumnElement[bool]:
    """The notification's track (if any) is one the recipient may still open, and its
    comment (if any) is not hidden: a track made private, hidden or whose owner was banned
    after the fact must not stay named in the recipient's list or stream."""
    t, c = Track.__table__, Comment.__table__.c  # type: ignore[attr-defined]
    viewable = (
        exists()
        .select_from(t.join(PT, P.id == t.c.owner_id))
        .where(t.c.id == N.track_id, viewable_condition(Viewer(profile_id=recipient_id)))
        .correlate_except(PT)  # PT here is the track's owner, not the outer actor
    )
    return and_(
        or_(N.track_id.is_(None), viewable),
        or_(N.comment_id.is_(None), exists().where(c.id == N.comment_id, c.hidden.is_(False))),
    )


def _visible(recipient_id: uuid.UUID) -> Any:
    """Notifications of the recipient whose actor and subject are visible, with the actor's
    profile."""
    return (
        select(Notification, UserProfile)
        .join_from(NT, PT, P.id == N.actor_id)
        .where(N.recipient_id == recipient_id, visible_condition(), subject_visible(recipient_id))
    )


async def page(
    session: AsyncSession,
    recipient_id: uuid.UUID,
    *,
    unread: bool | None,
    before: int | None,
    limit: int,
) -> list[tuple[Notification, UserProfile]]:
    """Newest first; ``unread`` True/False filters, ``before`` is the keyset (``seq``)."""
    stmt = _visible(recipient_id)
    if unread is not None:
        # NOT read (not read = false), so the partial unread index matches its predicate.
        stmt = stmt.where(not_(N.read) if unread else N.read)
    if before is not None:
        stmt = stmt.where(N.seq < before)
    rows = await session.execute(stmt.order_by(N.seq.desc()).limit(limit))
    return [(row[0], row[1]) for row in rows.all()]


async def after(
    session: AsyncSession, recipient_id: uuid.UUID, *, seq: int, limit: int
) -> list[tuple[Notification, UserProfile]]:
    """Oldest first after ``seq`` (stream resumption and catching up)."""
    stmt = _visible(recipient_id).where(N.seq > seq).order_by(N.seq).limit(limit)
    return [(row[0], row[1]) for row in (await session.execute(stmt)).all()]


async def get_visible(
    session: AsyncSession, recipient_id: uuid.UUID, notification_id: uuid.UUID
) -> tuple[Notification, UserProfile] | None:
    row = (await session.execute(_visible(recipient_id).where(N.id == notification_id))).first()
    return (row[0], row[1]) if row is not None else None


async def count_unread(session: AsyncSession, recipient_id: uuid.UUID) -> int:
    stmt = (
        select(func.count())
        .select_from(NT.join(PT, P.id == N.actor_id))
        .where(
            N.recipient_id == recipient_id,
            not_(N.read),
            visible_condition(),
            subject_visible(recipient_id),
        )
    )
    return int(await session.scalar(stmt) or 0)


async def latest_seq(session: AsyncSession, recipient_id: uuid.UUID) -> int:
    stmt = select(func.max(N.seq)).where(N.recipient_id == recipient_id)
    return int(await session.scalar(stmt) or 0)


async def unread_recipients(
    session: AsyncSession,
    *,
    actor_id: uuid.UUID | None = None,
    track_id: uuid.UUID | None = None,
    comment_id: uuid.UUID | None = None,
    after: uuid.UUID | None,
    limit: int,
) -> list[uuid.UUID]:
    """Distinct recipients with unread notifications from the actor, or about the track or
    comment (given exactly one; each column has an index), in id order."""
    column, value = next(
        (c, v)
        for c, v in ((N.actor_id, actor_id), (N.track_id, track_id), (N.comment_id, comment_id))
        if v
    )
    stmt = select(N.recipient_id).where(column == value, not_(N.read)).distinct()
    if after is not None:
        stmt = stmt.where(N.recipient_id > after)
    rows = await session.scalars(stmt.order_by(N.recipient_id).limit(limit))
    return list(rows.all())
