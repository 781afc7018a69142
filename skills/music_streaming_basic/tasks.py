"""Actors of ``music-streaming-basic``."""

from __future__ import annotations

import uuid
from typing import Any

from skills.music_streaming_basic import service


async def forget_owner_tracks(kernel: Any, *, payload: dict[str, Any], **event: Any) -> None:
    """Drop cached tracks of an account whose visibility changed (idempotent)."""
    owner = payload.get("user_id") or payload.get("id")
    if not owner:
        return
    async with kernel.db.session() as session:
        await service.invalidate_owner(kernel, session, uuid.UUID(str(owner)))
