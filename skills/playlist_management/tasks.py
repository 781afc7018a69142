"""Actors of ``playlist-management``: both are idempotent (at-least-once delivery)."""

from __future__ import annotations

import logging
from typing import Any

from skills.playlist_management import entries

log = logging.getLogger("soundhive.playlists")
MAX_ROUNDS = 20


async def repair(kernel: Any, **event: Any) -> None:
    """On ``track.deleted`` (and periodically): renumber the playlists the deletion marked."""
    async with kernel.db.session() as session:
        for _ in range(MAX_ROUNDS):
            if await entries.repair_marked(session) < entries.REPAIR_BATCH:
                return
    log.info("repair stopped after %d rounds; the next run continues", MAX_ROUNDS)


async def audit(kernel: Any, **_: Any) -> None:
    """Hourly: repair any playlist whose count or positions disagree with its entries."""
    async with kernel.db.session() as session:
        repaired = await entries.audit(session)
    if repaired:
        log.warning("audit repaired %d inconsistent playlists", repaired)
