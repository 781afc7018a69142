"""The live stream behind ``GET /notifications/stream``: server-sent events from Redis pub/sub.

On connect the stream subscribes first, then replays from PostgreSQL what came after
``Last-Event-ID`` (so nothing published meanwhile is lost; duplicates of the replay are
skipped), then forwards live items. Each event's ``id:`` is the notification's ``seq``.
Without Redis it polls the database instead. It holds no database connection while waiting.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import anyio
from pydantic import ValidationError
from redis.exceptions import RedisError
from sse_starlette import ServerSentEvent

from skills.notification_system import live, service
from skills.notification_system.schemas import NotificationRead

if TYPE_CHECKING:
    from core.kernel import Kernel

log = logging.getLogger("soundhive.notifications")
RETRY_MS = 3000
"""Reconnection delay the browser's EventSource is told to use."""
REFRESH_EVERY = 20.0
"""Seconds between stream-slot refreshes (the slot TTL is 60 s)."""


def event(item: NotificationRead) -> ServerSentEvent:
    return ServerSentEvent(data=item.model_dump_json(), event="notification", id=str(item.seq))


async def _subscribe(kernel: Kernel, user_id: uuid.UUID) -> Any | None:
    """A pub/sub connection on the user's channel, or ``None`` (then the stream polls)."""
    client = kernel.cache.client
    if client is None or not kernel.cache.usable:
        return None
    pubsub = client.pubsub()
    try:
        await pubsub.subscribe(live.channel(kernel, user_id))
    except (RedisError, OSError) as exc:
        kernel.circuit.trip()
        log.warning("stream falls back to polling: %s", type(exc).__name__)
        await _close(pubsub)
        return None
    return pubsub


async def _close(pubsub: Any | None) -> None:
    if pubsub is not None:
        with contextlib.suppress(Exception):
            await pubsub.aclose()


async def notification_events(
    kernel: Kernel,
    user_id: uuid.UUID,
    *,
    last_seq: int | None,
    stream_id: str,
    shutdown: anyio.Event,
) -> AsyncIterator[ServerSentEvent]:
    """Events until the client leaves or the server shuts down (``shutdown`` is set)."""
    cfg = service.settings_of(kernel)
    pubsub = await _subscribe(kernel, user_id)
    try:
        yield ServerSentEvent(comment="connected", retry=RETRY_MS)
        cursor = last_seq if last_seq is not None else await service.latest_seq(kernel, user_id)
        replayed: set[int] = set()
        if last_seq is not None:
            for item in await service.after_seq(kernel, user_id, last_seq, cfg.replay_limit):
                replayed.add(item.seq)
                cursor = max(cursor, item.seq)
                yield event(item)
        refreshed = time.monotonic()
        while not shutdown.is_set():
            if time.monotonic() - refreshed > REFRESH_EVERY:
                await live.refresh_slot(kernel, user_id, stream_id)
                refreshed = time.monotonic()
            if pubsub is None:
                with anyio.move_on_after(cfg.poll_seconds):
                    await shutdown.wait()
                pubsub = await _subscribe(kernel, user_id)  # back to live once Redis is
                replayed = set()
                for item in await service.after_seq(kernel, user_id, cursor, cfg.replay_limit):
                    replayed.add(item.seq)
                    cursor = max(cursor, item.seq)
                    yield event(item)
                continue
            try:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            except (RedisError, OSError) as exc:
                log.warning("stream lost Redis, polling: %s", type(exc).__name__)
                kernel.circuit.trip()
                await _close(pubsub)
                pubsub = None
                continue
            if message is None or message.get("type") != "message":
                continue
            try:
                item = NotificationRead.model_validate_json(message["data"])
            except ValidationError:
                continue
            if item.seq in replayed:
                continue  # published while the replay ran: already sent
            cursor = max(cursor, item.seq)
            yield event(item)
    finally:
        # Cancellation (disconnect, shutdown) would cancel these awaits too: shield them.
        with anyio.move_on_after(2, shield=True):
            await _close(pubsub)
            await live.release_slot(kernel, user_id, stream_id)
