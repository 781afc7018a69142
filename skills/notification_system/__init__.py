"""``notification-system``: notifications for likes, comments, follows and new uploads.

Notifications are made only by this skill's actors, from the domain events other skills emit
through the outbox; nobody calls it directly. Hooks stay thin and import the heavy modules when
called, so discovering the skill does no work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.skill import Actor, CacheKey, EventHandler, Skill, hookimpl

if TYPE_CHECKING:
    from fastapi import APIRouter

    from core.kernel import Kernel

SKILL = Skill(
    name="notification-system",
    version="0.1.0",
    requires=(
        "user-profile",
        "user-follow-system",
        "music-streaming-basic",
        "interaction-like-comment",
    ),
    description="Notifications from domain events, read state, live stream (SSE).",
)

UNREAD_NAMESPACE = "notification-unread"
STREAM_NAMESPACE = "notification-stream"
ACCOUNT_EVENTS = ("user.banned", "user.unbanned", "user.deleted")
"""Notifications from banned or deleted accounts are hidden, so these change unread counts."""
SUBJECT_EVENTS = (
    "track.updated",
    "track.hidden",
    "track.unhidden",
    "comment.hidden",
    "comment.unhidden",
)
"""A track made private or hidden (or a hidden comment) stops counting, so these change them too.
A deleted track takes its notifications with it (cascade): counts drift until the 60 s TTL."""


@hookimpl
def register_models() -> list[type[Any]]:
    from skills.notification_system.models import Notification, NotificationRecipient

    return [Notification, NotificationRecipient]


@hookimpl
def register_routers(kernel: Kernel) -> list[APIRouter]:
    from skills.notification_system.router import router

    return [router]


@hookimpl
def register_settings() -> type[Any]:
    from skills.notification_system.settings import NotificationSettings

    return NotificationSettings


@hookimpl
def register_cache_keys() -> list[CacheKey]:
    return [
        CacheKey(UNREAD_NAMESPACE, 60, "unread count per recipient (<user_id>), dropped on change"),
        CacheKey(
            STREAM_NAMESPACE,
            60,
            "live stream: pub/sub channel <user_id>; open-stream slots <user_id>:slots "
            "(sorted set, members expire unless refreshed)",
        ),
    ]


@hookimpl
def register_actors(kernel: Kernel) -> list[Actor]:
    from skills.notification_system import tasks

    return [
        Actor("on_track_liked", tasks.on_track_liked, max_retries=10),
        Actor("on_comment_created", tasks.on_comment_created, max_retries=10),
        Actor("on_user_followed", tasks.on_user_followed, max_retries=10),
        Actor("on_track_created", tasks.on_track_created, max_retries=10),
        Actor("fan_out", tasks.fan_out, max_retries=10),
        Actor("on_account_changed", tasks.on_account_changed, max_retries=5),
        Actor("on_subject_changed", tasks.on_subject_changed, max_retries=5),
    ]


@hookimpl
def register_event_handlers(kernel: Kernel) -> list[EventHandler]:
    return [
        EventHandler("track.liked", "on_track_liked"),
        EventHandler("comment.created", "on_comment_created"),
        EventHandler("user.followed", "on_user_followed"),
        EventHandler("track.created", "on_track_created"),
        *(EventHandler(event, "on_account_changed") for event in ACCOUNT_EVENTS),
        *(EventHandler(event, "on_subject_changed") for event in SUBJECT_EVENTS),
    ]
