"""Redis side of notifications: unread-count invalidation, per-user pub/sub, stream slots.

Everything here is best effort: with Redis down, notifications still commit (the list and
the count read PostgreSQL; streams poll it) and cached counts expire within their TTL.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from skills.notification_system import STREAM_NAMESPACE, UNREAD_NAMESPACE

if TYPE_CHECKING:
    from core.kernel import Kernel
    from skills.notification_system.schemas import NotificationRead

log = logging.getLogger("soundhive.notifications")

ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
"""
"""Atomic check-and-take of a stream slot; members carry their own expiry (Redis clock), so a
crashed API process frees its slots within the TTL."""

REFRESH = """
local t = redis.call('TIME')
redis.call('ZADD', KEYS[1], tonumber(t[1]) + tonumber(ARGV[1]), ARGV[2])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1]))
return 1
"""

_local: dict[str, set[str]] = {}
"""Streams open in this process per user: the cap's fallback while Redis is unreachable."""


def channel(kernel: Kernel, user_id: uuid.UUID | str) -> str:
    return kernel.cache.key(STREAM_NAMESPACE, str(user_id))


def _slots_key(kernel: Kernel, user_id: uuid.UUID | str) -> str:
    return kernel.cache.key(STREAM_NAMESPACE, f"{user_id}:slots")


async def deliver(kernel: Kernel, items: Sequence[tuple[uuid.UUID, NotificationRead]]) -> None:
    """After a commit: drop the recipients' cached counts and publish each item to its
    recipient's channel, in one round trip."""
    client = kernel.cache.client
    if not items or client is None:
        return
    try:
        async with client.pipeline(transaction=False) as pipe:
            pipe.delete(*(kernel.cache.key(UNREAD_NAMESPACE, str(r)) for r, _ in items))
            if kernel.cache.usable:
                for recipient, item in items:
                    pipe.publish(channel(kernel, recipient), item.model_dump_json())
            await pipe.execute()
    except (RedisError, OSError) as exc:
        log.warning("notifications not published: %s", type(exc).__name__)
        kernel.circuit.trip()


# -- stream slots --------------------------------------------------------------------------
async def acquire_slot(kernel: Kernel, user_id: uuid.UUID, stream_id: str, limit: int) -> bool:
    """Take one of the user's ``limit`` stream slots (Redis: across processes; otherwise this
    process's count)."""
    mine = _local.get(str(user_id), set())
    client = kernel.cache.client
    taken: Any = None
    if client is not None and kernel.cache.usable:
        ttl = kernel.cache.ttl(STREAM_NAMESPACE)
        try:
            script = client.register_script(ACQUIRE)
            taken = await script(keys=[_slots_key(kernel, user_id)], args=[limit, ttl, stream_id])
        except (RedisError, OSError) as exc:
            log.warning("stream slots from this process only: %s", type(exc).__name__)
            kernel.circuit.trip()
    if taken is None:  # no Redis: this process's own count
        taken = len(mine) < limit
    if taken:
        _local.setdefault(str(user_id), mine).add(stream_id)
    return bool(taken)


async def refresh_slot(kernel: Kernel, user_id: uuid.UUID, stream_id: str) -> None:
    """Keep a long-lived stream's slot from expiring."""
    client = kernel.cache.client
    if client is None or not kernel.cache.usable:
        return
    try:
        script = client.register_script(REFRESH)
        ttl = kernel.cache.ttl(STREAM_NAMESPACE)
        await script(keys=[_slots_key(kernel, user_id)], args=[ttl, stream_id])
    except (RedisError, OSError):
        kernel.circuit.trip()


async def release_slot(kernel: Kernel, user_id: uuid.UUID, stream_id: str) -> None:
    """Idempotent: the stream's end and the response's background task both call it."""
    mine = _local.get(str(user_id))
    if mine is not None:
        mine.discard(stream_id)
        if not mine:
            _local.pop(str(user_id), None)
    client = kernel.cache.client
    if client is None:
        return
    try:
        await client.zrem(_slots_key(kernel, user_id), stream_id)
    except (RedisError, OSError):
        kernel.circuit.trip()
