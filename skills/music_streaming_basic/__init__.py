"""``music-streaming-basic``: tracks, tags, playback URLs, owner edits and deletion."""

from __future__ import annotations

from typing import Any

from core.skill import Actor, CacheKey, EventHandler, Skill, hookimpl

SKILL = Skill(
    name="music-streaming-basic",
    version="0.1.0",
    requires=("user-profile",),
    description="Track metadata, playback URLs, byte-range streaming, tags.",
)


@hookimpl
def register_models() -> list[type[Any]]:
    from skills.music_streaming_basic.models import Tag, Track, TrackTag

    return [Track, Tag, TrackTag]


@hookimpl
def register_routers(kernel: Any) -> list[Any]:
    from skills.music_streaming_basic.router import router

    return [router]


@hookimpl
def register_cache_keys() -> list[CacheKey]:
    return [
        CacheKey(
            "track",
            300,
            "track by id: hash of metadata JSON (no URLs; dropped on change) and counters "
            "(HINCRBY after each like/comment/play commit); API processes keep what they read "
            "in memory for 30 s (near cache, dropped everywhere on each change)",
            near_ttl_seconds=30,
        )
    ]


@hookimpl
def register_actors(kernel: Any) -> list[Actor]:
    from skills.music_streaming_basic.tasks import forget_owner_tracks

    return [Actor("forget_owner_tracks", forget_owner_tracks, max_retries=5)]


@hookimpl
def register_event_handlers(kernel: Any) -> list[EventHandler]:
    # a ban, unban or account deletion changes who may see the owner's tracks
    return [
        EventHandler(event, "forget_owner_tracks")
        for event in ("user.banned", "user.unbanned", "user.deleted")
    ]
