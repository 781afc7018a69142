"""Redis cache with declared namespaces, counted hits/misses, and a fail-open circuit.

When Redis is unreachable every call falls through to the source (the loader) and the
circuit stays open for a few seconds, so requests do not each wait for a connect timeout.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from core import metrics
from core.skill import CacheKey

T = TypeVar("T")
KEY_PREFIX = "sh"
log = logging.getLogger("soundhive.cache")


def make_redis(url: str) -> aioredis.Redis:
    """A Redis client that fails fast: short timeouts, no retries (the circuit handles it)."""
    return aioredis.Redis.from_url(
        url,
        socket_connect_timeout=0.5,
        socket_timeout=1.0,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=30,
        decode_responses=False,
    )


class Circuit:
    """Remembers a Redis failure for ``cooldown`` seconds so callers skip Redis meanwhile."""

    def __init__(self, cooldown: float = 2.0) -> None:
        self.cooldown = cooldown
        self._open_until = 0.0

    @property
    def closed(self) -> bool:
        return time.monotonic() >= self._open_until

    def trip(self) -> None:
        metrics.CACHE_ERRORS.inc()
        self._open_until = time.monotonic() + self.cooldown

    def reset(self) -> None:
        self._open_until = 0.0


class UndeclaredCacheKey(KeyError):
    """A skill used a namespace it did not declare in ``register_cache_keys``."""


class Cache:
    """JSON values under declared namespaces; every method tolerates Redis being down."""

    def __init__(
        self, client: aioredis.Redis | None, declared: dict[str, CacheKey], circuit: Circuit
    ) -> None:
        self.client = client
        self.declared = declared
        self.circuit = circuit
        self._scripts: dict[str, Any] = {}

    def script(self, source: str) -> Any:
        """A registered Lua script (``EVALSHA``, loaded again if Redis lost it)."""
        registered = self._scripts.get(source)
        if registered is None:
            registered = self._scripts[source] = self.client.register_script(source)  # type: ignore[union-attr]
        return registered

    def key(self, namespace: str, suffix: str = "") -> str:
        if namespace not in self.declared:
            raise UndeclaredCacheKey(f"cache namespace {namespace!r} is not declared by any skill")
        return f"{KEY_PREFIX}:{namespace}:{suffix}"

    def ttl(self, namespace: str) -> int:
        return self.declared[namespace].ttl_seconds

    @property
    def usable(self) -> bool:
        return self.client is not None and self.circuit.closed

    async def get(self, namespace: str, suffix: str) -> Any | None:
        key = self.key(namespace, suffix)
        if not self.usable:
            metrics.CACHE_REQUESTS.labels(namespace, "bypass").inc()
            return None
        try:
            raw = await self.client.get(key)  # type: ignore[union-attr]
        except (RedisError, OSError) as exc:
            self._failed(exc)
            metrics.CACHE_REQUESTS.labels(namespace, "bypass").inc()
            return None
        metrics.CACHE_REQUESTS.labels(namespace, "hit" if raw is not None else "miss").inc()
        return None if raw is None else json.loads(raw)

    async def set(
        self,
        namespace: str,
        suffix: str,
        value: Any,
        ttl: int | None = None,
        *,
        only_if_absent: bool = False,
    ) -> None:
        """Store a JSON value. ``only_if_absent`` (``SET NX``) lets a writer block re-caching
        for a while with a tombstone (see user-profile's account cache)."""
        key = self.key(namespace, suffix)
        if not self.usable:
            return
        try:
            await self.client.set(  # type: ignore[union-attr]
                key,
                json.dumps(value, default=str),
                ex=ttl or self.ttl(namespace),
                nx=only_if_absent,
            )
        except (RedisError, OSError) as exc:
            self._failed(exc)

    async def get_or_set(
        self,
        namespace: str,
        suffix: str,
        loader: Callable[[], Awaitable[T]],
        ttl: int | None = None,
    ) -> T:
        """The cached JSON value, or ``loader()``'s value stored for next time.

        ``None`` results are not cached, so a missing row is looked up again.
        """
        cached = await self.get(namespace, suffix)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        value = await loader()
        if value is not None:
            await self.set(namespace, suffix, value, ttl)
        return value

    async def invalidate(self, namespace: str, *suffixes: str) -> None:
        keys = [self.key(namespace, suffix) for suffix in suffixes]
        if not keys or self.client is None:
            return
        try:
            await self.client.delete(*keys)
        except (RedisError, OSError) as exc:
            self._failed(exc)

    async def invalidate_namespace(self, namespace: str) -> None:
        """Drop every key of a namespace (SCAN, not KEYS, so Redis is never blocked)."""
        pattern = self.key(namespace, "*")
        if self.client is None:
            return
        try:
            batch: list[bytes] = []
            async for key in self.client.scan_iter(match=pattern, count=500):
                batch.append(key)
                if len(batch) >= 500:
                    await self.client.delete(*batch)
                    batch.clear()
            if batch:
                await self.client.delete(*batch)
        except (RedisError, OSError) as exc:
            self._failed(exc)

    def _failed(self, exc: BaseException) -> None:
        if self.circuit.closed:
            log.warning("redis unavailable, serving from the source: %s", type(exc).__name__)
        self.circuit.trip()
