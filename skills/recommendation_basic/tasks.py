"""Actors of ``recommendation-basic``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from skills.recommendation_basic import service

if TYPE_CHECKING:
    from core.kernel import Kernel

TASTE_EVENTS = ("track.liked", "track.unliked")


async def forget_recommendations(kernel: Kernel, *, payload: dict[str, Any], **event: Any) -> None:
    """A like changes the liker's taste and what must be excluded: drop their cached list."""
    user_id = payload.get("user_id")
    if user_id:
        await service.forget(kernel, str(user_id))
