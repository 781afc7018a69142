"""``playlist-management``: playlists with ordered, contiguous entries, visibility and forks.

Hooks stay thin and import the heavy modules when called, so discovering the skill does no
work. Other skills import :mod:`skills.playlist_management.api` only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.skill import Actor, EventHandler, PeriodicJob, Skill, hookimpl

if TYPE_CHECKING:
    from fastapi import APIRouter

    from core.kernel import Kernel

SKILL = Skill(
    name="playlist-management",
    version="0.1.0",
    requires=("user-profile", "music-streaming-basic"),
    description="Playlists: CRUD, add/remove/reorder, visibility, fork.",
)


@hookimpl
def register_models() -> list[type[Any]]:
    from skills.playlist_management.models import Playlist, PlaylistRepair, PlaylistTrack

    return [Playlist, PlaylistTrack, PlaylistRepair]


@hookimpl
def register_routers(kernel: Kernel) -> list[APIRouter]:
    from skills.playlist_management.router import router

    return [router]


@hookimpl
def register_settings() -> type[Any]:
    from skills.playlist_management.settings import PlaylistSettings

    return PlaylistSettings


@hookimpl
def register_actors(kernel: Kernel) -> list[Actor]:
    from skills.playlist_management.tasks import audit, repair

    return [Actor("repair", repair, max_retries=5), Actor("audit", audit, max_retries=0)]


@hookimpl
def register_event_handlers(kernel: Kernel) -> list[EventHandler]:
    # a deleted track's entries vanish by FK cascade; the repair closes the gaps it leaves
    return [EventHandler("track.deleted", "repair")]


@hookimpl
def register_periodic_jobs(kernel: Kernel) -> list[PeriodicJob]:
    return [PeriodicJob("repair", 300), PeriodicJob("audit", 3600)]
