"""``music-upload``: three-step presigned upload, asynchronous audio processing, clean-up."""

from __future__ import annotations

from typing import Any

from core.skill import Actor, CacheKey, EventHandler, PeriodicJob, Skill, hookimpl

SKILL = Skill(
    name="music-upload",
    version="0.1.0",
    requires=("user-profile", "music-streaming-basic"),
    description="Presigned uploads, audio analysis, stale upload and orphan clean-up.",
)


@hookimpl
def register_models() -> list[type[Any]]:
    from skills.music_upload.models import UploadSession

    return [UploadSession]


@hookimpl
def register_routers(kernel: Any) -> list[Any]:
    from skills.music_upload.router import router

    return [router]


@hookimpl
def register_settings() -> type[Any]:
    from skills.music_upload.settings import UploadSettings

    return UploadSettings


@hookimpl
def register_cache_keys() -> list[CacheKey]:
    return [CacheKey("track-progress", 3600, "processing progress: pub/sub channel and last value")]


@hookimpl
def register_actors(kernel: Any) -> list[Actor]:
    from skills.music_upload.maintenance import cleanup, reap
    from skills.music_upload.processing import process

    return [
        Actor("process", process, max_retries=3, time_limit_ms=30 * 60 * 1000, queue="processing"),
        Actor("cleanup", cleanup, max_retries=0),
        Actor("reap", reap, max_retries=0),
    ]


@hookimpl
def register_event_handlers(kernel: Any) -> list[EventHandler]:
    return [EventHandler("track.uploaded", "process")]


@hookimpl
def register_periodic_jobs(kernel: Any) -> list[PeriodicJob]:
    return [PeriodicJob("cleanup", 300), PeriodicJob("reap", 60)]
