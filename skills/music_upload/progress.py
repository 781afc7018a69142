"""Processing progress over Redis pub/sub (live) plus a short-lived last-known value (late
joiners). Losing Redis only loses the live bar: status is always in PostgreSQL."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

if TYPE_CHECKING:
    from core.kernel import Kernel

NAMESPACE = "track-progress"
log = logging.getLogger("soundhive.upload.progress")


def channel(kernel: Kernel, track_id: str) -> str:
    return kernel.cache.key(NAMESPACE, track_id)


async def publish(kernel: Kernel, track_id: str, event: dict[str, Any]) -> None:
    """Send one progress event; best effort."""
    cache = kernel.cache
    if not cache.usable or cache.client is None:
        return
    data = json.dumps(event)
    try:
        await cache.client.publish(channel(kernel, track_id), data)
        await cache.client.set(channel(kernel, track_id) + ":last", data, ex=cache.ttl(NAMESPACE))
    except (RedisError, OSError) as exc:
        cache.failed(exc)


async def last(kernel: Kernel, track_id: str) -> dict[str, Any] | None:
    cache = kernel.cache
    if not cache.usable or cache.client is None:
        return None
    try:
        raw = await cache.client.get(channel(kernel, track_id) + ":last")
    except (RedisError, OSError) as exc:
        cache.failed(exc)
        return None
    return None if raw is None else json.loads(raw)
