"""``play-history-tracking``: play events, listening history and exact play counts.

Other skills import :mod:`skills.play_history_tracking.api` only. Hooks stay thin and import
the heavy modules when called, so discovering the skill does no work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.skill import CacheKey, Skill, hookimpl

if TYPE_CHECKING:
    from fastapi import APIRouter

    from core.kernel import Kernel

SKILL = Skill(
    name="play-history-tracking",
    version="0.1.0",
    requires=("user-profile", "music-streaming-basic"),
    description="Play events, listening history, play counts (Navidrome's rule, anti-inflation).",
)


@hookimpl
def register_models() -> list[type[Any]]:
    from skills.play_history_tracking.models import PlayHistory

    return [PlayHistory]


@hookimpl
def register_routers(kernel: Kernel) -> list[APIRouter]:
    from skills.play_history_tracking.router import router

    return [router]


@hookimpl
def register_settings() -> type[Any]:
    from skills.play_history_tracking.settings import PlaySettings

    return PlaySettings


@hookimpl
def register_cache_keys() -> list[CacheKey]:
    from skills.play_history_tracking.rules import MAX_WINDOW_SECONDS, WINDOW_NAMESPACE

    return [
        CacheKey(
            WINDOW_NAMESPACE,
            MAX_WINDOW_SECONDS,
            "one counted play per listener and track per window: <listener>:<track_id> "
            "(SET NX EX; the TTL of each key is its track's window)",
        )
    ]
