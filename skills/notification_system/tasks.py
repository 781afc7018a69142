"""Actors of ``notification-system``: the only writers of notifications.

Event actors receive ``id, type, payload, occurred_at`` (at-least-once, possibly late: the
outbox relays events whenever the broker is back). Each re-checks the facts at handling time
in its insert, so a redelivery, a like taken back or an actor banned meanwhile makes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import TYPE_CHECKING, Any

from skills.notification_system import live, service
from skills.notification_system import repository as repo

if TYPE_CHECKING:
    from core.kernel import Kernel

log = logging.getLogger("soundhive.notifications")
FAN_OUT = "notification-system.fan_out"


def _id(payload: dict[str, Any], key: str) -> uuid.UUID | None:
    value = payload.get(key)
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        log.warning("event payload has a bad %s: %r", key, value)
        return None


async def on_track_liked(kernel: Kernel, *, payload: dict[str, Any], **event: Any) -> None:
    """``track.liked`` → ``like`` for the track's owner (one per liker and track, ever)."""
    track, liker = _id(payload, "track_id"), _id(payload, "user_id")
    owner = _id(payload, "owner_id")
    if track and liker and owner:
        await service.notify(
            kernel,
            recipient_id=owner,
            actor_id=liker,
            type_="like",
            track_id=track,
            still=repo.still_liked(track, liker),
        )


async def on_comment_created(kernel: Kernel, *, payload: dict[str, Any], **event: Any) -> None:
    """``comment.created`` → ``comment`` for the track's owner and, for a reply, for the
    parent comment's author (the same row if that is the owner)."""
    comment, track = _id(payload, "comment_id"), _id(payload, "track_id")
    author = _id(payload, "author_id")
    if not (comment and track and author):
        return
    recipients = {_id(payload, "owner_id"), _id(payload, "parent_author_id")}
    for recipient in (r for r in recipients if r is not None):
        await service.notify(
            kernel,
            recipient_id=recipient,
            actor_id=author,
            type_="comment",
            track_id=track,
            comment_id=comment,
            still=repo.comment_shown(comment, author),
        )


async def on_user_followed(kernel: Kernel, *, payload: dict[str, Any], **event: Any) -> None:
    """``user.followed`` → ``follow`` for the followed account (once per follower)."""
    follower, following = _id(payload, "follower_id"), _id(payload, "following_id")
    if follower and following:
        await service.notify(
            kernel,
            recipient_id=following,
            actor_id=follower,
            type_="follow",
            still=repo.still_following(follower, following),
        )


async def on_track_created(kernel: Kernel, *, payload: dict[str, Any], **event: Any) -> None:
    """``track.created`` (a track became ready) → start the fan-out to the owner's followers,
    for public tracks only."""
    track, owner = _id(payload, "track_id"), _id(payload, "owner_id")
    if track and owner and payload.get("visibility") == "public":
        await asyncio.to_thread(kernel.send, FAN_OUT, str(track), str(owner), None)


async def fan_out(kernel: Kernel, track_id: str, owner_id: str, after: str | None = None) -> int:
    """One batch of ``new_track`` notifications (``fanout_batch`` followers, one short
    transaction), then the next batch as a new job: a retry redoes only this batch."""
    limit = service.settings_of(kernel).fanout_batch
    made, next_after = await service.fan_out_batch(
        kernel,
        track_id=uuid.UUID(track_id),
        owner_id=uuid.UUID(owner_id),
        after=after,
        limit=limit,
    )
    if next_after is not None:
        await asyncio.to_thread(kernel.send, FAN_OUT, track_id, owner_id, next_after)
    await live.deliver(kernel, made)
    return len(made)


async def on_account_changed(kernel: Kernel, *, payload: dict[str, Any], **event: Any) -> None:
    """``user.banned`` / ``user.unbanned`` / ``user.deleted``: that account's notifications
    are hidden (or shown again), so its recipients' cached unread counts are stale."""
    user = _id(payload, "user_id")
    if user:
        await service.forget_counts_of_actor(kernel, user)


async def on_subject_changed(
    kernel: Kernel, *, type: str, payload: dict[str, Any], **event: Any
) -> None:
    """A track's visibility changed (``track.updated`` naming ``visibility``, hidden or shown
    again) or a comment was hidden or shown: notifications about it stop or start counting,
    so their recipients' cached unread counts are stale."""
    if type == "track.updated" and "visibility" not in (payload.get("fields") or ()):
        return  # a title or tag edit changes no count
    if type.startswith("track."):
        track = _id(payload, "track_id")
        if track:
            await service.forget_counts_about(kernel, track_id=track)
    else:
        comment = _id(payload, "comment_id")
        if comment:
            await service.forget_counts_about(kernel, comment_id=comment)
