"""Periodic jobs: expire unfinished uploads, delete orphan objects, reap stuck processing."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from skills.music_streaming_basic import api as tracks
from skills.music_streaming_basic.api import Track
from skills.music_upload.models import UploadSession
from skills.music_upload.service import settings_of

if TYPE_CHECKING:
    from core.kernel import Kernel

log = logging.getLogger("soundhive.upload.maintenance")
PREFIXES = ("uploads/", "covers/")


async def cleanup(kernel: Kernel, **_: Any) -> dict[str, int]:
    """Expire pending sessions past their URL's life and delete their objects; then delete
    stored objects that no track or open upload references (after a grace period)."""
    now = datetime.now(UTC)
    async with kernel.db.session() as session, session.begin():
        expired = (
            (
                await session.execute(
                    update(UploadSession)
                    .where(UploadSession.state == "pending", UploadSession.expires_at < now)  # type: ignore[arg-type]
                    .values(state="expired")
                    .returning(UploadSession.object_key)
                )
            )
            .scalars()
            .all()
        )
    for key in expired:
        await kernel.storage.delete(key)
    orphans = await delete_orphans(
        kernel, older_than=timedelta(seconds=settings_of(kernel).orphan_grace_seconds)
    )
    if expired or orphans:
        log.info(
            "upload clean-up: %d sessions expired, %d orphan objects deleted", len(expired), orphans
        )
    return {"expired": len(expired), "orphans": orphans}


async def delete_orphans(kernel: Kernel, *, older_than: timedelta, batch: int = 500) -> int:
    """Objects under ``uploads/`` and ``covers/`` that nothing references, older than the grace."""
    cutoff = datetime.now(UTC) - older_than
    deleted = 0
    for prefix in PREFIXES:
        pending: list[str] = []
        async for info in kernel.storage.iter_objects(prefix):
            if info.last_modified is not None and info.last_modified > cutoff:
                continue
            pending.append(info.key)
            if len(pending) >= batch:
                deleted += await _delete_unreferenced(kernel, pending)
                pending = []
        if pending:
            deleted += await _delete_unreferenced(kernel, pending)
    return deleted


async def _delete_unreferenced(kernel: Kernel, keys: list[str]) -> int:
    async with kernel.db.session() as session:
        referenced = set(
            (
                await session.scalars(
                    select(tracks.Track.object_key).where(tracks.Track.object_key.in_(keys))
                )
            ).all()  # type: ignore[attr-defined]
        )
        referenced |= set(
            (
                await session.scalars(
                    select(tracks.Track.cover_key).where(tracks.Track.cover_key.in_(keys))
                )
            ).all()  # type: ignore[union-attr]
        )
        referenced |= set(
            (
                await session.scalars(
                    select(UploadSession.object_key).where(
                        UploadSession.object_key.in_(keys),  # type: ignore[attr-defined]
                        UploadSession.state == "pending",
                    )
                )
            ).all()
        )
    orphans = [key for key in keys if key not in referenced]
    for key in orphans:
        await kernel.storage.delete(key)
    return len(orphans)


async def reap(kernel: Kernel, **_: Any) -> dict[str, int]:
    """Tracks stuck in ``processing`` past the deadline: send them again, or fail them once
    they used up their attempts (a worker killed mid-job leaves exactly this state)."""
    options = settings_of(kernel)
    cutoff = datetime.now(UTC) - timedelta(seconds=options.processing_deadline_seconds)

    async with kernel.db.session() as session:
        stuck = (
            await session.execute(
                select(Track.id, Track.processing_attempts).where(
                    Track.status == "processing",
                    Track.updated_at < cutoff,  # type: ignore[arg-type]
                )
            )
        ).all()
    retried = failed = 0
    for track_id, attempts in stuck:
        if attempts < options.max_processing_attempts:
            async with kernel.db.session() as session, session.begin():
                row = await session.get(Track, track_id, with_for_update=True)
                if row is None or row.status != "processing":
                    continue
                row.updated_at = datetime.now(UTC)  # restart the deadline for this attempt
            await asyncio.to_thread(kernel.send, "music-upload.process", track_id=str(track_id))
            retried += 1
        else:
            async with kernel.db.session() as session, session.begin():
                await tracks.mark_failed(
                    session,
                    track_id,
                    "Processing did not finish in time; please upload the file again.",
                )
            await tracks.invalidate_track(kernel, track_id)
            failed += 1
    return {"retried": retried, "failed": failed}
