"""Notification rules: who is told what, read state, the unread-count cache.

Writers are this skill's actors only (see ``tasks.py``); each notification is one short
transaction, then the recipient's cached unread count is dropped and the item is published
to their live stream (``live.py``) — after the commit, so a stream never shows a row that
rolled back.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import NotFound, ValidationFailed
from core.pagination import decode_cursor, encode_cursor
from skills.notification_system import UNREAD_NAMESPACE, live
from skills.notification_system import repository as repo
from skills.notification_system.schemas import NotificationRead
from skills.notification_system.settings import NotificationSettings
from skills.user_follow_system import api as follows
from skills.user_profile import api as profiles

if TYPE_CHECKING:
    from core.kernel import Kernel

SKILL_NAME = "notification-system"


def settings_of(kernel: Kernel) -> NotificationSettings:
    return kernel.skill_settings(SKILL_NAME)  # type: ignore[no-any-return]


def not_found() -> NotFound:
    return NotFound("No notification with that id.", code="NOTIFICATION_NOT_FOUND")


def to_read(row: Any, actor: Any | None) -> NotificationRead:
    """An API item from a notification row (ORM or RETURNING) and the actor's profile."""
    item = NotificationRead.model_validate(row)
    if actor is not None:
        item.actor = profiles.ProfileRead.model_validate(actor)
    return item


# -- creation (actors) ------------------------------------------------------------------------
async def notify(
    kernel: Kernel,
    *,
    recipient_id: uuid.UUID,
    actor_id: uuid.UUID,
    type_: str,
    still: ColumnElement[bool],
    track_id: uuid.UUID | None = None,
    comment_id: uuid.UUID | None = None,
) -> NotificationRead | None:
    """Make one notification if ``still`` holds and the actor may act; ``None`` when nothing
    was made (yourself, banned actor, retracted like, or it already exists)."""
    if recipient_id == actor_id:
        return None
    async with kernel.db.session() as session, session.begin():
        await repo.hold_recipients(session, [recipient_id])  # commit in seq order
        row = await repo.insert_one(
            session,
            recipient_id=recipient_id,
            type_=type_,
            actor_id=actor_id,
            track_id=track_id,
            comment_id=comment_id,
            still=still,
        )
        if row is None:
            return None
        actor = await profiles.get_profile(session, actor_id)
    item = to_read(row, actor)
    await live.deliver(kernel, [(recipient_id, item)])
    return item


async def fan_out_batch(
    kernel: Kernel,
    *,
    track_id: uuid.UUID,
    owner_id: uuid.UUID,
    after: str | None,
    limit: int,
) -> tuple[list[tuple[uuid.UUID, NotificationRead]], str | None]:
    """One batch of ``new_track`` notifications in one short transaction: the rows made and
    where the next batch starts (``None``: done, or the track is no longer public)."""
    async with kernel.db.session() as session, session.begin():
        batch = await follows.follower_ids(session, owner_id, after=after, limit=limit)
        await repo.hold_recipients(session, batch.ids)  # commit in seq order per recipient
        rows = await repo.insert_new_track(session, batch.ids, owner_id=owner_id, track_id=track_id)
        if batch.ids and not rows and not await _listable(session, track_id):
            return [], None
        actor = await profiles.get_profile(session, owner_id) if rows else None
    made = [(row.recipient_id, to_read(row, actor)) for row in rows]
    return made, batch.next_after


async def _listable(session: AsyncSession, track_id: uuid.UUID) -> bool:
    return bool(await session.scalar(select(repo.track_listable(track_id))))


async def forget_counts_of_actor(kernel: Kernel, actor_id: uuid.UUID, *, batch: int = 1000) -> int:
    """Drop cached unread counts of everyone with unread notifications from ``actor_id`` (its
    visibility changed, so what counts changed); returns how many recipients."""
    return await _forget_counts(kernel, {"actor_id": actor_id}, batch=batch)


async def forget_counts_about(
    kernel: Kernel,
    *,
    track_id: uuid.UUID | None = None,
    comment_id: uuid.UUID | None = None,
    batch: int = 1000,
) -> int:
    """Drop cached unread counts of everyone with unread notifications about this track or
    comment (it was hidden, shown again or changed visibility); returns how many recipients."""
    about = {"track_id": track_id} if track_id else {"comment_id": comment_id}
    return await _forget_counts(kernel, about, batch=batch)


async def _forget_counts(kernel: Kernel, about: dict[str, Any], *, batch: int) -> int:
    done, position = 0, None
    while True:
        async with kernel.db.session() as session, session.begin():
            ids = await repo.unread_recipients(session, **about, after=position, limit=batch)
        if ids:
            await kernel.cache.invalidate(UNREAD_NAMESPACE, *(str(i) for i in ids))
            done += len(ids)
        if len(ids) < batch:
            return done
        position = ids[-1]


# -- reads and read state (API) ----------------------------------------------------------------
def _decode(cursor: str | None) -> int | None:
    values = decode_cursor(cursor, arity=2)
    if values is None:
        return None
    if values[0] != "n" or not isinstance(values[1], int):
        raise ValidationFailed("The cursor is not valid for this list.", code="INVALID_CURSOR")
    return values[1]


async def list_page(
    session: AsyncSession,
    recipient_id: uuid.UUID,
    *,
    unread: bool | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[NotificationRead], str | None]:
    """Newest first, keyset on ``seq``; the actor embedded without another query."""
    before = _decode(cursor)
    async with session.begin():
        rows = await repo.page(session, recipient_id, unread=unread, before=before, limit=limit + 1)
    items = [to_read(n, actor) for n, actor in rows[:limit]]
    more = len(rows) > limit
    return items, encode_cursor(["n", items[-1].seq]) if more else None


async def unread_count(kernel: Kernel, session: AsyncSession, recipient_id: uuid.UUID) -> int:
    """Cached per recipient; any new or newly read notification drops the key."""

    async def load() -> int:
        async with session.begin():
            return await repo.count_unread(session, recipient_id)

    return int(await kernel.cache.get_or_set(UNREAD_NAMESPACE, str(recipient_id), load))


async def mark_read(
    kernel: Kernel, session: AsyncSession, recipient_id: uuid.UUID, notification_id: uuid.UUID
) -> NotificationRead:
    """Mark one of the caller's notifications read (404 for anyone else's); idempotent."""
    async with session.begin():
        found = await repo.get_visible(session, recipient_id, notification_id)
        if found is None:
            raise not_found()
        notification, actor = found
        changed = not notification.read
        if changed:
            await repo.mark_read(session, notification_id)
        item = to_read(notification, actor)
    item.read = True
    if changed:
        await kernel.cache.invalidate(UNREAD_NAMESPACE, str(recipient_id))
    return item


async def mark_all_read(kernel: Kernel, session: AsyncSession, recipient_id: uuid.UUID) -> int:
    async with session.begin():
        updated = await repo.mark_all_read(session, recipient_id)
    await kernel.cache.invalidate(UNREAD_NAMESPACE, str(recipient_id))
    return updated


# -- streams -----------------------------------------------------------------------------------
async def after_seq(
    kernel: Kernel, recipient_id: uuid.UUID, seq: int, limit: int
) -> list[NotificationRead]:
    """Notifications after ``seq``, oldest first, on a session of its own (streams hold no
    connection while they wait)."""
    async with kernel.db.session() as session, session.begin():
        rows = await repo.after(session, recipient_id, seq=seq, limit=limit)
    return [to_read(n, actor) for n, actor in rows]


async def latest_seq(kernel: Kernel, recipient_id: uuid.UUID) -> int:
    async with kernel.db.session() as session, session.begin():
        return await repo.latest_seq(session, recipient_id)
