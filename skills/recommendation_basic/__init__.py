"""``recommendation-basic``: rule-based, explainable recommendations and similar tracks.

Hooks stay thin and import the heavy modules when called, so discovering the skill does no work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.skill import Actor, CacheKey, EventHandler, Skill, hookimpl

if TYPE_CHECKING:
    from fastapi import APIRouter

    from core.kernel import Kernel

SKILL = Skill(
    name="recommendation-basic",
    version="0.1.0",
    requires=(
        "user-profile",
        "music-streaming-basic",
        "play-history-tracking",
        "interaction-like-comment",
        "tag-search-discovery",
    ),
    description="Recommendations from likes, tags and plays (explained); similar tracks.",
)


@hookimpl
def register_routers(kernel: Kernel) -> list[APIRouter]:
    from skills.recommendation_basic.router import router

    return [router]


@hookimpl
def register_cache_keys() -> list[CacheKey]:
    return [
        CacheKey("recommendations", 300, "ranked ids + reasons per user: <profile id>"),
        CacheKey("similar", 300, "ranked ids + reasons per track: <track id>"),
    ]


@hookimpl
def register_actors(kernel: Kernel) -> list[Actor]:
    from skills.recommendation_basic.tasks import forget_recommendations

    return [Actor("forget_recommendations", forget_recommendations)]


@hookimpl
def register_event_handlers(kernel: Kernel) -> list[EventHandler]:
    from skills.recommendation_basic.tasks import TASTE_EVENTS

    return [EventHandler(event, "forget_recommendations") for event in TASTE_EVENTS]
