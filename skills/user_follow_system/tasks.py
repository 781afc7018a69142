"""Actors of ``user-follow-system``."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from skills.user_follow_system import service

if TYPE_CHECKING:
    from core.kernel import Kernel


async def recount_neighbours(kernel: Kernel, *, payload: dict[str, Any], **event: Any) -> None:
    """On ``user.banned`` / ``user.unbanned`` / ``user.deleted``: the counters of the accounts
    on the other side of that user's follows change. Recounting is idempotent, so redelivery
    and out-of-order events converge on the current state."""
    user_id = payload.get("user_id")
    if not user_id:
        return
    async with kernel.db.session() as session:
        await service.recount_neighbours(kernel, session, uuid.UUID(str(user_id)))
