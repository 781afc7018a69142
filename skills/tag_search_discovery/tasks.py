"""Actors of ``tag-search-discovery``: keep the search index fresh, score trending tracks."""

from __future__ import annotations

import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from skills.tag_search_discovery import indexer, service
from skills.tag_search_discovery.trending import compute_trending

if TYPE_CHECKING:
    from core.kernel import Kernel

log = logging.getLogger("soundhive.discovery")
INDEXED_EVENTS = ("track.uploaded", "track.created", "track.updated")
SWEEP_EVERY = 300  # seconds, the job's period
SWEEP_PARTS = 12

__all__ = ["compute_trending", "index_track", "reindex_all", "sync_search"]


async def index_track(kernel: Kernel, *, payload: dict[str, Any], **event: Any) -> None:
    """Re-index the track an event is about (idempotent: the document is rebuilt whole)."""
    track_id = payload.get("track_id")
    if not track_id:
        return
    async with kernel.db.session() as session, session.begin():
        await indexer.index_tracks(session, [uuid.UUID(str(track_id))])


async def sync_search(kernel: Kernel, *, part: int | None = None, **_: Any) -> dict[str, int]:
    """The sweep: index what events missed in one slice of the tracks (the slice follows the
    clock, so ``SWEEP_PARTS`` runs — an hour — make a full pass at a small cost per run), then
    refresh the cached tag counts. ``part`` picks the slice (tests, operators)."""
    if part is None:
        part = int(time.time() // SWEEP_EVERY) % SWEEP_PARTS
    written = await indexer.sync(kernel, part=(part, SWEEP_PARTS))
    if written:
        log.info("search sweep indexed %d tracks (part %d/%d)", written, part, SWEEP_PARTS)
    await service.refresh_popular_tags(kernel)
    return {"indexed": written}


async def reindex_all(kernel: Kernel) -> int:
    """Every slice at once: what the sweep does in an hour (tests; operators after an import)."""
    return await indexer.sync(kernel)
