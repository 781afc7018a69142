"""The public face of ``playlist-management`` for skills that declare it in ``requires``
(e.g. moderation acting on a reported playlist)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from skills.playlist_management import service as _service
from skills.playlist_management.models import Playlist, PlaylistTrack

__all__ = ["Playlist", "PlaylistTrack", "remove_playlist"]


async def remove_playlist(session: AsyncSession, playlist_id: uuid.UUID) -> bool:
    """Delete a playlist whoever owns it (runs its own transaction on ``session``); emits
    ``playlist.deleted``. False if it did not exist."""
    return await _service.remove(session, playlist_id)
