"""Fixed-window rate limiting in Redis, failing open when Redis is unavailable.

A hand-written INCR/EXPIRE window (rather than the ``limits`` package) so it shares the
kernel's Redis client and circuit breaker. :func:`hit` is exact: one round trip (one
``EVALSHA``) per request, for the strict per-route limits. The global limit that every API
request passes goes through :class:`BatchedCounter`, which counts in memory and reports to
Redis in batches while a caller is far from its limit (docs/PERFORMANCE.md).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from redis.exceptions import RedisError

from core import metrics
from core.cache import Cache
from core.errors import RateLimited
from core.settings import parse_rate

log = logging.getLogger("soundhive.ratelimit")

COUNT_SCRIPT = """
local count = redis.call('INCRBY', KEYS[1], ARGV[2] or 1)
if count == tonumber(ARGV[2] or 1) then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""
"""INCRBY and, for a new window, EXPIRE, atomically in one command (a MULTI/EXEC pipeline is
four commands and twice the client-side work)."""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int
    window: int

    def headers(self) -> dict[str, str]:
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
            "RateLimit-Policy": f"{self.limit};w={self.window}",
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, self.reset_seconds))
        return headers


async def hit(cache: Cache, bucket: str, limit: int, window: int) -> Decision | None:
    """Count one request in ``bucket``; ``None`` when Redis is down (fail open)."""
    now = int(time.time())
    start = now - now % window
    reset = start + window - now
    if not cache.usable:
        return None
    key = cache.key("ratelimit", f"{bucket}:{start}")
    try:
        count = int(await cache.script(COUNT_SCRIPT)(keys=[key], args=[window + 1]))
    except (RedisError, OSError) as exc:
        cache.failed(exc)
        return None
    allowed = count <= limit
    if not allowed:
        metrics.RATE_LIMITED.inc()
    return Decision(allowed, limit, max(0, limit - count), reset, window)


@dataclass
class _Window:
    start: int
    length: int
    known: int  # the shared count Redis last reported (every process's requests)
    pending: int = 0  # admitted here, not yet reported


class BatchedCounter:
    """The global limit without a Redis round trip on most requests.

    A caller's first request in a window, and every request once its count passes
    ``local_share`` of the limit, is counted in Redis at once (exact, as :func:`hit`). Below
    that, requests are admitted on this process's estimate (the shared count last seen plus
    what it admitted since) and reported every ``interval`` seconds in one pipeline. The
    price: a client bursting faster than ``interval`` across several processes can exceed
    its limit by at most ``local_share`` of it per process before the exact path takes over.
    Redis down: fail open, as :func:`hit`; any Redis failure (the circuit trips) also drops
    every estimate, so nothing is admitted locally until Redis has counted again.
    """

    def __init__(self, cache: Cache, *, local_share: float = 0.5, interval: float = 0.2) -> None:
        self.cache = cache
        self.local_share = local_share
        self.interval = interval
        self._windows: dict[str, _Window] = {}
        self._unreported: set[str] = set()
        self._next_prune = 0.0
        self._trips = cache.circuit.trips
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="rate-limit-reports")

    async def stop(self) -> None:
        self._stopping = True  # a cancel that lands inside a Redis call may be swallowed
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=3)  # never hold up a shutdown
            self._task = None
        await self.flush()

    async def hit(self, bucket: str, limit: int, window: int) -> Decision | None:
        now = int(time.time())
        start = now - now % window
        reset = start + window - now
        key = self.cache.key("ratelimit", f"{bucket}:{start}")
        if self.cache.circuit.trips != self._trips:  # Redis failed: its counts are unknown
            self._trips = self.cache.circuit.trips
            self._windows.clear()
            self._unreported.clear()
        entry = self._windows.get(key)
        if entry is not None and entry.known + entry.pending < limit * self.local_share:
            entry.pending += 1
            self._unreported.add(key)
            return Decision(True, limit, limit - entry.known - entry.pending, reset, window)
        if not self.cache.usable:
            return None
        pending = 0
        if entry is not None:  # reported with this request, so never twice
            pending, entry.pending = entry.pending, 0
        try:
            count = int(
                await self.cache.script(COUNT_SCRIPT)(keys=[key], args=[window + 1, pending + 1])
            )
        except (RedisError, OSError) as exc:
            self.cache.failed(exc)
            return None
        entry = self._windows.get(key)
        if entry is None:
            self._windows[key] = entry = _Window(start, window, count)
        else:  # a concurrent report may have seen a higher count already
            entry.known = max(entry.known, count)
        allowed = count <= limit
        if not allowed:
            metrics.RATE_LIMITED.inc()
        return Decision(allowed, limit, max(0, limit - count - entry.pending), reset, window)

    async def flush(self) -> None:
        """Report what was admitted locally since the last report, in one pipeline; forget
        windows that have ended."""
        now = time.time()
        if now >= self._next_prune:  # a full scan, but rarely
            self._next_prune = now + 5
            for key in [k for k, w in self._windows.items() if w.start + w.length <= now]:
                del self._windows[key]
        keys, self._unreported = self._unreported, set()
        if not keys or not self.cache.usable:
            return
        batch = []
        for key in keys:
            entry = self._windows.get(key)
            if entry is not None and entry.pending:
                batch.append((key, entry.pending, entry.length))
                entry.pending = 0
        if not batch:
            return
        script = self.cache.script(COUNT_SCRIPT)
        try:
            async with self.cache.client.pipeline(transaction=False) as pipe:  # type: ignore[union-attr]
                for key, pending, length in batch:
                    await script(keys=[key], args=[length + 1, pending], client=pipe)
                counts = await pipe.execute()
        except (RedisError, OSError) as exc:
            self.cache.failed(exc)
            return  # fail open: those admissions stay uncounted
        for (key, _, _), count in zip(batch, counts, strict=True):
            reported = self._windows.get(key)
            if reported is not None:
                reported.known = max(reported.known, int(count))

    async def _run(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.interval)
            try:
                await self.flush()
            except Exception:  # never let the reporter die
                log.exception("rate-limit report failed")


def client_identity(
    scope_headers: list[tuple[bytes, bytes]], client: tuple[str, int] | None
) -> str:
    """Key for the caller: a hash of its bearer token, else its IP (proxy headers resolved
    by uvicorn's ``--forwarded-allow-ips``)."""
    for name, value in scope_headers:
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            return "t:" + hashlib.sha256(value[7:].strip()).hexdigest()[:24]
    return "ip:" + (client[0] if client else "unknown")


async def enforce(request: Request, name: str, rate: str, *, exact: bool = True) -> None:
    """Count one request against the caller's named budget; 429 ``RATE_LIMITED`` when spent.

    For stricter per-route limits (uploads, reports) on top of the global one. ``exact=False``
    counts through the API's :class:`BatchedCounter` (for busy routes with a generous budget,
    such as plays): no Redis round trip while the caller is far from the limit.
    """
    limit, window = parse_rate(rate)
    kernel = request.app.state.kernel
    identity = client_identity(request.scope["headers"], request.scope.get("client"))
    bucket = f"{name}:{identity}"
    counter: BatchedCounter | None = None if exact else kernel.rate_counter
    decision = (
        await counter.hit(bucket, limit, window)
        if counter is not None
        else await hit(kernel.cache, bucket, limit, window)
    )
    if decision is not None and not decision.allowed:
        raise RateLimited(
            f"Too many '{name}' requests: at most {limit} per {window} s.",
            headers=decision.headers(),
        )


def route_limit(name: str, rate: str) -> object:
    """A dependency enforcing a fixed named limit on one route."""
    parse_rate(rate)

    async def check(request: Request) -> None:
        await enforce(request, name, rate)

    return Depends(check)


RouteLimit = Annotated[None, route_limit]
