"""Redis cache with declared namespaces, counted hits/misses, and a fail-open circuit.

When Redis is unreachable every call falls through to the source (the loader) and the
circuit stays open for a few seconds, so requests do not each wait for a connect timeout.
Namespaces that declare ``near_ttl_seconds`` are also copied in process memory
(``core.nearcache``); every change made here drops those copies in every process.
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
from core.nearcache import CLEAR_ALL, InvalidationListener, NearCache, channel, drop_message
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
        self.trips = 0
        """How many failures it has seen: state kept on Redis's word (the rate counter's
        estimates) is forgotten when this changes."""

    @property
    def closed(self) -> bool:
        return time.monotonic() >= self._open_until

    def trip(self) -> None:
        metrics.CACHE_ERRORS.inc()
        self.trips += 1
        self._open_until = time.monotonic() + self.cooldown

    def reset(self) -> None:
        self._open_until = 0.0


class UndeclaredCacheKey(KeyError):
    """A skill used a namespace it did not declare in ``register_cache_keys``."""


class Cache:
    """JSON values under declared namespaces; every method tolerates Redis being down."""

    def __init__(
        self,
        client: aioredis.Redis | None,
        declared: dict[str, CacheKey],
        circuit: Circuit,
        *,
        near: bool = True,
    ) -> None:
        self.client = client
        self.declared = declared
        self.circuit = circuit
        self._scripts: dict[str, Any] = {}
        self._near_declared = {ns for ns, key in declared.items() if key.near_ttl_seconds > 0}
        self.near: dict[str, NearCache] = (
            {
                ns: NearCache(declared[ns].near_ttl_seconds, declared[ns].near_max_entries)
                for ns in self._near_declared
            }
            if near and client is not None
            else {}
        )
        db = client.connection_pool.connection_kwargs.get("db", 0) if client is not None else 0
        self.channel = channel(db)
        """Pub/sub channel of near-cache drops; per Redis database, like the keys."""

    def listener(self, redis_url: str) -> InvalidationListener:
        """The task that keeps this process's near caches coherent (the API starts it)."""
        return InvalidationListener(redis_url, self.channel, self.near, on_error=self._failed)

    def near_cache(self, namespace: str) -> NearCache | None:
        """The in-process copies of ``namespace``, or None (not declared, or disabled)."""
        return self.near.get(namespace)

    def drop_near(self, namespace: str, *suffixes: str) -> str | None:
        """Drop local copies now; the message to publish so other processes drop theirs too
        (None when the namespace has no near cache anywhere)."""
        if namespace not in self._near_declared:
            return None
        near = self.near.get(namespace)
        if near is not None:
            near.drop(suffixes)
        return drop_message(namespace, suffixes)

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
        near = self.near.get(namespace)
        token = None
        if near is not None:
            copy = near.get(suffix)
            if copy is not None:  # counted by the near cache (core.nearcache.report)
                return json.loads(copy)
            token = near.begin(suffix)
        try:
            raw = await self.client.get(key)  # type: ignore[union-attr]
        except (RedisError, OSError) as exc:
            self._failed(exc)
            metrics.CACHE_REQUESTS.labels(namespace, "bypass").inc()
            return None
        metrics.CACHE_REQUESTS.labels(namespace, "hit" if raw is not None else "miss").inc()
        if raw is None:
            return None
        if near is not None:
            near.fill(suffix, raw, token)
        return json.loads(raw)

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
        raw = json.dumps(value, default=str)
        expiry = ttl or self.ttl(namespace)
        # a replaced value must leave every process's copy; a seed (NX) replaces nothing
        message = None if only_if_absent else self.drop_near(namespace, suffix)
        if not self.usable:
            return
        try:
            if message is None:
                await self.client.set(key, raw, ex=expiry, nx=only_if_absent)  # type: ignore[union-attr]
                return
            async with self.client.pipeline(transaction=False) as pipe:  # type: ignore[union-attr]
                pipe.set(key, raw, ex=expiry)
                pipe.publish(self.channel, message)
                await pipe.execute()
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
        if not keys:
            return
        message = self.drop_near(namespace, *suffixes)
        if self.client is None:
            return
        try:
            if message is None:
                await self.client.delete(*keys)
                return
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.delete(*keys)
                pipe.publish(self.channel, message)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            self._failed(exc)

    async def invalidate_namespace(self, namespace: str) -> None:
        """Drop every key of a namespace (SCAN, not KEYS, so Redis is never blocked)."""
        pattern = self.key(namespace, "*")
        message = self.drop_near(namespace, CLEAR_ALL)
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
            if message is not None:  # after the deletes: a copy filled meanwhile is dropped
                await self.client.publish(self.channel, message)
        except (RedisError, OSError) as exc:
            self._failed(exc)

    def failed(self, exc: BaseException) -> None:
        """Record a Redis error from a caller's own command: trips the circuit (fail open)."""
        self._failed(exc)

    def _failed(self, exc: BaseException) -> None:
        if self.circuit.closed:
            log.warning("redis unavailable, serving from the source: %s", type(exc).__name__)
        self.circuit.trip()
