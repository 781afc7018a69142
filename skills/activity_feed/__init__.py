"""``activity-feed``: the home feed (``GET /feed``), fan-out on read; no tables, no cache.

Hooks stay thin and import the heavy modules when called, so discovering the skill does no
work. See README.md for why the feed is read, not pushed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.skill import Skill, hookimpl

if TYPE_CHECKING:
    from fastapi import APIRouter

    from core.kernel import Kernel

SKILL = Skill(
    name="activity-feed",
    version="0.1.0",
    requires=("user-profile", "user-follow-system", "music-streaming-basic"),
    description="Home feed of tracks from followed accounts, newest first.",
)


@hookimpl
def register_routers(kernel: Kernel) -> list[APIRouter]:
    from skills.activity_feed.router import router

    return [router]
