"""``user-follow-system``: follow / unfollow, followers and following lists, exact counters.

Other skills import :mod:`skills.user_follow_system.api` only. Hooks stay thin and import the
heavy modules when called, so discovering the skill does no work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.skill import Actor, EventHandler, Skill, hookimpl

if TYPE_CHECKING:
    from fastapi import APIRouter

    from core.kernel import Kernel

SKILL = Skill(
    name="user-follow-system",
    version="0.1.0",
    requires=("user-profile",),
    description="Follow / unfollow, followers and following lists, exact follower counts.",
)

VISIBILITY_EVENTS = ("user.banned", "user.unbanned", "user.deleted")
"""A change in who may be seen changes the counters of everyone on the other side."""


@hookimpl
def register_models() -> list[type[Any]]:
    from skills.user_follow_system.models import Follow

    return [Follow]


@hookimpl
def register_routers(kernel: Kernel) -> list[APIRouter]:
    from skills.user_follow_system.router import router

    return [router]


@hookimpl
def register_actors(kernel: Kernel) -> list[Actor]:
    from skills.user_follow_system.tasks import recount_neighbours

    return [Actor("recount_neighbours", recount_neighbours, max_retries=10)]


@hookimpl
def register_event_handlers(kernel: Kernel) -> list[EventHandler]:
    return [EventHandler(event, "recount_neighbours") for event in VISIBILITY_EVENTS]
