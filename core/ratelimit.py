"""Fixed-window rate limiting in Redis, failing open when Redis is unavailable.

A hand-written INCR/EXPIRE window (rather than the ``limits`` package) so it shares the
kernel's Redis client and circuit breaker; one round trip (one ``EVALSHA``) per request.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from redis.exceptions import RedisError

from core import metrics
from core.cache import Cache
from core.errors import RateLimited
from core.settings import parse_rate

COUNT_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""
"""INCR and, for a new window, EXPIRE, atomically in one command (a MULTI/EXEC pipeline is
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


def client_identity(
    scope_headers: list[tuple[bytes, bytes]], client: tuple[str, int] | None
) -> str:
    """Key for the caller: a hash of its bearer token, else its IP (proxy headers resolved
    by uvicorn's ``--forwarded-allow-ips``)."""
    for name, value in scope_headers:
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            return "t:" + hashlib.sha256(value[7:].strip()).hexdigest()[:24]
    return "ip:" + (client[0] if client else "unknown")


async def enforce(request: Request, name: str, rate: str) -> None:
    """Count one request against the caller's named budget; 429 ``RATE_LIMITED`` when spent.

    For stricter per-route limits (uploads, reports) on top of the global one.
    """
    limit, window = parse_rate(rate)
    kernel = request.app.state.kernel
    identity = client_identity(request.scope["headers"], request.scope.get("client"))
    decision = await hit(kernel.cache, f"{name}:{identity}", limit, window)
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
