"""``interaction-like-comment``: likes, comments at a position in the track, one level of replies.

Other skills import :mod:`skills.interaction_like_comment.api` only. Hooks stay thin and import
the heavy modules when called, so discovering the skill does no work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.skill import Skill, hookimpl

if TYPE_CHECKING:
    from fastapi import APIRouter

    from core.kernel import Kernel

SKILL = Skill(
    name="interaction-like-comment",
    version="0.1.0",
    requires=("user-profile", "music-streaming-basic"),
    description="Likes, timed comments and replies on tracks, with exact counters.",
)


@hookimpl
def register_models() -> list[type[Any]]:
    from skills.interaction_like_comment.models import Comment, Like

    return [Like, Comment]


@hookimpl
def register_routers(kernel: Kernel) -> list[APIRouter]:
    from skills.interaction_like_comment.router import router

    return [router]
