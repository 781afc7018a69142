"""``tag-search-discovery``: search, tags, moods, latest and trending.

Other skills import :mod:`skills.tag_search_discovery.api` only. Hooks stay thin and import
the heavy modules when called, so discovering the skill does no work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.skill import Actor, CacheKey, EventHandler, PeriodicJob, Skill, hookimpl

if TYPE_CHECKING:
    import typer
    from fastapi import APIRouter

    from core.kernel import Kernel

SKILL = Skill(
    name="tag-search-discovery",
    version="0.1.0",
    requires=(
        "user-profile",
        "music-streaming-basic",
        "play-history-tracking",
        "interaction-like-comment",
    ),
    description="Full-text + fuzzy search (Korean and English), tags, moods, latest, trending.",
)


@hookimpl
def register_models() -> list[type[Any]]:
    from skills.tag_search_discovery.models import TrackSearch

    return [TrackSearch]


@hookimpl
def register_routers(kernel: Kernel) -> list[APIRouter]:
    from skills.tag_search_discovery.router import router

    return [router]


@hookimpl
def register_cache_keys() -> list[CacheKey]:
    return [
        CacheKey("trending", 60, "trending ranking pages (ids): <limit>:<cursor>"),
        CacheKey("tags", 600, "most used tags with counts; refreshed by sync_search every 5 min"),
        CacheKey("search", 30, "first pages of text searches (ids): <hash of the criteria>"),
    ]


@hookimpl
def register_actors(kernel: Kernel) -> list[Actor]:
    from skills.tag_search_discovery import tasks

    return [
        Actor("index_track", tasks.index_track),
        Actor("sync_search", tasks.sync_search, max_retries=0),
        Actor("compute_trending", tasks.compute_trending, max_retries=0),
    ]


@hookimpl
def register_event_handlers(kernel: Kernel) -> list[EventHandler]:
    from skills.tag_search_discovery.tasks import INDEXED_EVENTS

    return [EventHandler(event, "index_track") for event in INDEXED_EVENTS]


@hookimpl
def register_periodic_jobs(kernel: Kernel) -> list[PeriodicJob]:
    # periodic jobs run again on the next tick: retries would only pile up behind it
    from skills.tag_search_discovery.tasks import SWEEP_EVERY

    return [PeriodicJob("compute_trending", 60), PeriodicJob("sync_search", SWEEP_EVERY)]


@hookimpl
def register_cli(app: typer.Typer) -> None:
    from skills.tag_search_discovery.seed import seed

    app.command("seed")(seed)
