"""Play rules: visibility, Navidrome's counting rule, one counted play per listener and track
per window, and the counter moved in the same transaction as the history row."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import NotFound
from core.events import emit, events_committed, relay_after_commit
from core.pagination import decode_cursor, encode_cursor
from skills.music_streaming_basic import api as tracks
from skills.play_history_tracking import repository as repo
from skills.play_history_tracking.rules import WINDOW_NAMESPACE, qualifies, window_seconds
from skills.play_history_tracking.schemas import HistoryEntry, HistoryPage, PlayResult
from skills.play_history_tracking.settings import PlaySettings

if TYPE_CHECKING:
    from core.cache import Cache
    from core.kernel import Kernel

SKILL = "play-history-tracking"
log = logging.getLogger("soundhive.plays")


@dataclass(frozen=True)
class Listener:
    """Who played: a signed-in, non-banned profile, or an anonymous client (by IP, never
    stored — the IP only keys the anti-inflation window in Redis)."""

    user_id: uuid.UUID | None = None
    is_moderator: bool = False
    client_ip: str = "unknown"

    @property
    def viewer(self) -> tracks.Viewer:
        return tracks.Viewer(profile_id=self.user_id, is_moderator=self.is_moderator)

    def window_key(self, track_id: uuid.UUID) -> str:
        who = f"u:{self.user_id}" if self.user_id else f"ip:{self.client_ip}"
        return f"{who}:{track_id}"


def settings_of(kernel: Kernel) -> PlaySettings:
    return kernel.skill_settings(SKILL)  # type: ignore[no-any-return]


async def claim_window(cache: Cache, suffix: str, seconds: int) -> bool | None:
    """``SET NX EX``: True if this play may count, False if one already did within the
    window, None when Redis is unavailable (the caller decides how to fail)."""
    if not cache.usable:
        return None
    try:
        won = await cache.client.set(  # type: ignore[union-attr]
            cache.key(WINDOW_NAMESPACE, suffix), b"1", nx=True, ex=seconds
        )
    except (RedisError, OSError) as exc:
        cache.failed(exc)
        return None
    return bool(won)


async def record_play(
    kernel: Kernel, track_id: uuid.UUID, listener: Listener, played_ms: int | None
) -> PlayResult:
    """Record one play; count it when it qualifies and the listener's window is free.

    Status and duration come from the cached track (counted plays no longer evict it: they
    add their delta to it after the commit), so a play is one Redis read, the window claim,
    and one statement in autocommit (``repository._play_statement``: the counter's ``UPDATE
    … RETURNING``, the history row and the event, committed together).

    With Redis down, a signed-in listener's window is checked on their history rows under an
    advisory lock (exact, just slower: :func:`_record_checked`); an anonymous play does not
    count then, because nothing else would stop a script from inflating counts meanwhile.
    """
    data = await tracks.visible_track(kernel, None, track_id, listener.viewer)
    if data["status"] != "ready":
        raise NotFound("The track is not ready to play yet.", code="TRACK_NOT_READY")
    duration_ms = data.get("duration_ms")
    counted = qualifies(played_ms, duration_ms)
    window = window_seconds(duration_ms)
    claimed: bool | None = None
    if counted:
        claimed = await claim_window(kernel.cache, listener.window_key(track_id), window)
        if claimed is None and listener.user_id is not None:
            return await _record_checked(kernel, track_id, listener, played_ms, window)
        counted = bool(claimed)
    try:
        async with kernel.db.autocommit() as conn:
            play_count = await repo.record_play(
                conn,
                user_id=listener.user_id,
                track_id=track_id,
                played_ms=played_ms,
                counted=counted,
                stored=listener.user_id is not None or counted,
            )
        if play_count is None:
            raise tracks.track_not_found()
    except BaseException:
        if claimed:  # let a retry count: this play never happened
            await kernel.cache.invalidate(WINDOW_NAMESPACE, listener.window_key(track_id))
        raise
    if counted:
        await events_committed(kernel)
        await tracks.counters_changed(kernel, track_id, plays=+1)
    return PlayResult(counted=counted, play_count=play_count)


async def _record_checked(
    kernel: Kernel, track_id: uuid.UUID, listener: Listener, played_ms: int | None, window: int
) -> PlayResult:
    """A qualifying signed-in play while Redis is down: the window is checked on the
    listener's history, serialised by an advisory lock, in one transaction."""
    assert listener.user_id is not None
    async with kernel.db.session() as session:
        async with session.begin():
            await repo.lock_listener_track(session, listener.user_id, track_id)
            counted = not await repo.counted_within(session, listener.user_id, track_id, window)
            play_count = await _count(session, track_id, counted=counted, hold=True)
            await repo.insert_play(
                session,
                user_id=listener.user_id,
                track_id=track_id,
                played_ms=played_ms,
                counted=counted,
            )
            if counted:
                emit(session, "track.played", _event(track_id, listener, played_ms))
        await relay_after_commit(kernel, session)
    if counted:
        await tracks.counters_changed(kernel, track_id, plays=+1)
    return PlayResult(counted=counted, play_count=play_count)


async def _count(session: AsyncSession, track_id: uuid.UUID, *, counted: bool, hold: bool) -> int:
    """Add the play (row-locked, atomic) when it counts; the current count either way (held
    with a key-share lock, so a concurrent deletion waits and then cascades to our row)."""
    if counted:
        counts = await tracks.adjust_track_counters(session, track_id, plays=+1)
        if counts is None:
            raise tracks.track_not_found()
        return counts.play_count
    value = await repo.play_count(session, track_id, hold=hold)
    if value is None:
        raise tracks.track_not_found()
    return value


def _event(track_id: uuid.UUID, listener: Listener, played_ms: int | None) -> dict[str, object]:
    return {
        "track_id": str(track_id),
        "user_id": str(listener.user_id) if listener.user_id else None,
        "counted": True,
        "played_ms": played_ms,
    }


async def history(
    kernel: Kernel,
    session: AsyncSession,
    listener: Listener,
    *,
    cursor: str | None,
    limit: int,
) -> HistoryPage:
    """The listener's plays, newest first, keyset-paginated on (played_at, id)."""
    assert listener.user_id is not None
    position = decode_cursor(cursor, arity=2)
    after = (datetime.fromisoformat(position[0]), int(position[1])) if position else None
    rows = await repo.history(
        session,
        listener.user_id,
        is_moderator=listener.is_moderator,
        after=after,
        limit=limit + 1,
    )
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = encode_cursor([last[1].isoformat(), last[0]])
    reads = await tracks.track_reads(kernel, session, [row[4] for row in rows])
    items = [
        HistoryEntry(track=read, played_at=row[1], played_ms=row[2], counted=row[3])
        for row, read in zip(rows, reads, strict=True)
    ]
    return HistoryPage(items=items, next_cursor=next_cursor)
