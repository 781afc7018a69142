"""Per-process copies of hot cache entries, kept coherent across processes by Redis pub/sub.

Why: an authenticated read of a cached track made three Redis round trips (rate limit, the
caller's account, the track), about 0.25 ms of CPU each — more than the rest of the request
(docs/PERFORMANCE.md). A namespace that declares ``CacheKey(near_ttl_seconds=…)`` keeps the
entries this process read in memory, so a hot account or track costs no round trip at all.

Coherence, in order of what makes it safe:

* Copies are used only while this process's listener is subscribed to the invalidation
  channel. Any listener error (Redis restarted, connection lost) drops every copy and turns
  lookups into bypasses until it has subscribed again: a change published while we could not
  hear it never leaves a stale copy behind.
* Every change made through :class:`core.cache.Cache` (``set`` without ``only_if_absent``,
  ``invalidate``, ``invalidate_namespace``, and skills' own scripts that publish
  :func:`drop_message`) drops the local copy at once and publishes the key; the other
  processes drop theirs when the message arrives (well under a millisecond on one host).
* A fill is kept only if no drop of its key arrived since its read began (:meth:`begin`
  hands out a token that a drop revokes), so a read racing a change cannot put the old value
  back.
* A copy lives ``near_ttl_seconds`` at most, which bounds staleness even if a message were
  lost without the connection failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from core import metrics

log = logging.getLogger("soundhive.cache")

CLEAR_ALL = "*"
"""A message (or a suffix) that drops every copy (of every namespace, or of one)."""


def channel(db: int) -> str:
    """The invalidation channel of a Redis database (pub/sub is server-wide, keys are not)."""
    return f"sh:near:{db}"


def drop_message(namespace: str, suffixes: Iterable[str]) -> str:
    """The pub/sub payload that drops ``suffixes`` of ``namespace`` in every process."""
    return "\n".join([namespace, *suffixes])


class NearCache:
    """One namespace's copies of values read from Redis, bounded in age (``ttl``) and number
    (``maxsize``; the oldest fill goes first).

    Values are shared between requests, so callers store immutable data (bytes, or dicts of
    bytes they never mutate)."""

    def __init__(self, ttl: float, maxsize: int = 20_000) -> None:
        self.ttl = ttl
        self.maxsize = maxsize
        self.active = False
        self._entries: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._reads: dict[str, object] = {}
        self.hits = 0
        """Hits not yet added to ``soundhive_cache_requests_total{result="near"}``: the
        listener adds them about once a second (a multiprocess metric update per hit cost
        more than the hit itself)."""

    def get(self, suffix: str) -> Any | None:
        if not self.active:
            return None
        entry = self._entries.get(suffix)
        if entry is None:
            return None
        if entry[0] < time.monotonic():
            del self._entries[suffix]
            return None
        self.hits += 1
        return entry[1]

    def begin(self, suffix: str) -> object | None:
        """A token for a read of ``suffix`` from Redis that may fill this cache."""
        if not self.active:
            return None
        if len(self._reads) >= self.maxsize:
            self._reads.clear()  # abandoned reads (errors, cancellations): forget them all
        token = self._reads[suffix] = object()
        return token

    def fill(self, suffix: str, value: Any, token: object | None) -> None:
        """Keep ``value`` unless the key was dropped (or the cache disabled) since
        :meth:`begin`."""
        if token is None or self._reads.get(suffix) is not token:
            return
        del self._reads[suffix]
        if not self.active:
            return
        self._entries[suffix] = (time.monotonic() + self.ttl, value)
        self._entries.move_to_end(suffix)
        if len(self._entries) > self.maxsize:
            self._entries.popitem(last=False)

    def drop(self, suffixes: Iterable[str]) -> None:
        for suffix in suffixes:
            if suffix == CLEAR_ALL:
                self.clear()
                return
            self._entries.pop(suffix, None)
            self._reads.pop(suffix, None)

    def clear(self) -> None:
        self._entries.clear()
        self._reads.clear()

    def __len__(self) -> int:
        return len(self._entries)


class InvalidationListener:
    """Subscribes to the invalidation channel and applies drops to this process's copies.

    Runs as a task in the API's lifespan; while it is not subscribed every near cache is
    inactive (lookups go to Redis)."""

    def __init__(
        self,
        redis_url: str,
        channel: str,
        caches: dict[str, NearCache],
        *,
        on_error: Callable[[BaseException], None] | None = None,
        retry: float = 0.5,
    ) -> None:
        self.redis_url = redis_url
        self.on_error = on_error
        self.channel = channel
        self.caches = caches
        self.retry = retry
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.subscribed = asyncio.Event()

    def start(self) -> None:
        if self.caches and self._task is None:
            self._task = asyncio.create_task(self._run(), name="near-cache-invalidations")

    async def stop(self) -> None:
        # the flag as well as the cancel: redis-py can turn a cancel that races its read
        # timeout into a TimeoutError, which the loop would take for a lost connection
        self._stopping = True
        self._set_active(False)
        self.report()
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=3)  # never hold up a shutdown
            self._task = None

    def apply(self, message: str) -> None:
        namespace, _, rest = message.partition("\n")
        if namespace == CLEAR_ALL:
            for cache in self.caches.values():
                cache.clear()
            return
        near = self.caches.get(namespace)
        if near is not None:
            near.drop(rest.split("\n") if rest else [CLEAR_ALL])

    def report(self) -> None:
        """Add the hits counted since the last report to the cache metrics."""
        for namespace, near in self.caches.items():
            if near.hits:
                hits, near.hits = near.hits, 0
                metrics.CACHE_REQUESTS.labels(namespace, "near").inc(hits)

    def _set_active(self, active: bool) -> None:
        for cache in self.caches.values():
            cache.clear()
            cache.active = active
        if active:
            self.subscribed.set()
        else:
            self.subscribed.clear()

    async def _run(self) -> None:
        while not self._stopping:
            client = aioredis.Redis.from_url(
                self.redis_url, socket_connect_timeout=0.5, health_check_interval=5
            )
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    while not self._stopping:
                        message = await pubsub.get_message(timeout=1.0)
                        self.report()
                        if message is None:
                            continue
                        if message["type"] == "subscribe":  # confirmed: drops now reach us
                            self._set_active(True)
                        elif message["type"] == "message":
                            self.apply(message["data"].decode())
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                if self._stopping:
                    return
                if self.subscribed.is_set():
                    log.warning("near caches off until Redis answers: %s", type(exc).__name__)
                if self.on_error is not None:  # often the first to notice: tell the circuit
                    self.on_error(exc)
            finally:
                self._set_active(False)
                with contextlib.suppress(Exception):
                    await client.aclose()
            await asyncio.sleep(self.retry)
