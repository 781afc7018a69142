"""The ``music-upload.process`` actor: download, analyse, store results — idempotently."""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skills.music_streaming_basic import api as tracks
from skills.music_upload import progress
from skills.music_upload.analysis import analyse
from skills.music_upload.analysis.errors import AnalysisError
from skills.music_upload.service import settings_of

if TYPE_CHECKING:
    from core.kernel import Kernel

log = logging.getLogger("soundhive.upload.processing")


async def process(
    kernel: Kernel, track_id: str | None = None, *, payload: dict[str, Any] | None = None, **_: Any
) -> str:
    """Analyse one track. Called for ``track.uploaded`` events and by the reaper.

    Safe to repeat: a track that is no longer ``processing`` is left alone, and results are
    written with a conditional update. Infrastructure errors propagate so Dramatiq retries.
    """
    track_id = track_id or (payload or {}).get("track_id")
    if not track_id:
        return "no track id"
    tid = uuid.UUID(str(track_id))
    async with kernel.db.session() as session, session.begin():
        row = await session.get(tracks.Track, tid, with_for_update=True)
        if row is None or row.status != "processing":
            return "skipped"
        row.processing_attempts += 1
        row.updated_at = datetime.now(UTC)
        object_key, content_type = row.object_key, row.content_type
    await progress.publish(kernel, str(tid), {"status": "processing", "progress": 0.0})
    options = settings_of(kernel)
    with tempfile.TemporaryDirectory(prefix="soundhive-proc-") as folder:
        path = Path(folder) / "audio"
        await kernel.storage.download_to(object_key, path)
        report = _progress_reporter(kernel, str(tid), asyncio.get_running_loop())
        try:
            result = await asyncio.to_thread(
                analyse,
                path,
                declared_type=content_type,
                max_duration_s=options.max_duration_seconds,
                progress=report,
            )
        except AnalysisError as exc:
            return await _fail(kernel, tid, exc.detail)
        cover_key = None
        if result.cover is not None:
            cover_key = f"covers/{tid}.jpg"
            await kernel.storage.put_bytes(cover_key, result.cover, "image/jpeg")
    fields = {
        "duration_ms": result.duration_ms,
        "sample_rate": result.sample_rate,
        "channels": result.channels,
        "bitrate": result.bitrate,
        "bpm": result.bpm,
        "loudness_lufs": result.loudness_lufs,
        "waveform": result.waveform,
        "format": result.format,
        "cover_key": cover_key,
    }
    async with kernel.db.session() as session, session.begin():
        changed = await tracks.mark_ready(session, tid, fields)
    await tracks.invalidate_track(kernel, tid)
    await progress.publish(kernel, str(tid), {"status": "ready", "progress": 1.0})
    return "ready" if changed else "skipped"


async def _fail(kernel: Kernel, track_id: uuid.UUID, reason: str) -> str:
    async with kernel.db.session() as session, session.begin():
        await tracks.mark_failed(session, track_id, reason)
    await tracks.invalidate_track(kernel, track_id)
    await progress.publish(kernel, str(track_id), {"status": "failed", "failure_reason": reason})
    return "failed"


def _progress_reporter(kernel: Kernel, track_id: str, loop: asyncio.AbstractEventLoop) -> Any:
    """A thread-safe callback publishing at most a few updates per second."""
    last_sent = 0.0

    def report(fraction: float) -> None:
        nonlocal last_sent
        now = time.monotonic()
        if now - last_sent < 0.25 and fraction < 1.0:
            return
        last_sent = now
        event = {"status": "processing", "progress": round(min(max(fraction, 0.0), 0.99), 3)}
        asyncio.run_coroutine_threadsafe(progress.publish(kernel, track_id, event), loop)

    return report
