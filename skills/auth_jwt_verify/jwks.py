"""The Auth Server's public signing keys: fetched over HTTP, shared through Redis, kept in
process.

Once warm, looking a key up is a dict access: no network and no parsing per request.
Network happens only on a cold start, on an unknown ``kid`` (at most once per cooldown),
and once an hour in the background. A failed fetch never discards the keys already known.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
from joserfc import jwk
from joserfc.errors import JoseError

from core.cache import Cache
from skills.auth_jwt_verify import JWKS_CACHE

log = logging.getLogger("soundhive.auth.jwks")

CACHE_NAMESPACE = JWKS_CACHE.namespace
CACHE_TTL_SECONDS = JWKS_CACHE.ttl_seconds
MAX_JWKS_BYTES = 512 * 1024
EMPTY_RETRY_SECONDS = 1.0
"""After a failed load with no key known at all, retry this soon (not a full cooldown)."""
SIGNING_KEY_TYPES = frozenset({"RSA", "EC", "OKP"})
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


class JwksUnavailable(Exception):
    """No signing key is known and none could be loaded (Auth Server and Redis both failed)."""


def parse_jwks(document: Any) -> dict[str, jwk.Key]:
    """The usable public signing keys of a JWKS document, by ``kid``.

    Symmetric (``oct``) keys, encryption keys, private members and keys joserfc cannot import
    are dropped, so a JWKS can never hand us an HMAC secret.
    """
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWKS document")
    keys: dict[str, jwk.Key] = {}
    for data in document["keys"]:
        if not isinstance(data, dict) or data.get("kty") not in SIGNING_KEY_TYPES:
            continue
        if data.get("use", "sig") != "sig":
            continue
        public = {name: value for name, value in data.items() if name not in PRIVATE_MEMBERS}
        try:
            key = jwk.import_key(public)
            key.ensure_kid()
        except (JoseError, ValueError, TypeError):
            continue
        keys[str(key.kid)] = key
    if not keys:
        raise ValueError("the JWKS holds no usable signing key")
    return keys


class JwksCache:
    """The key set of one JWKS URL, for one kernel.

    ``cache`` returns the kernel's Redis cache (looked up on each use, as the kernel may
    rebuild it). One asyncio.Lock keeps a single fetch in flight; callers that waited on it
    reuse its result instead of fetching again.
    """

    def __init__(
        self,
        url: str | None,
        cache: Callable[[], Cache | None],
        *,
        cooldown: float = 30.0,
        timeout: float = 3.0,
        ttl: int = CACHE_TTL_SECONDS,
    ) -> None:
        self.url = url
        self.cooldown, self.timeout, self.ttl = cooldown, timeout, ttl
        self._cache = cache
        self._suffix = hashlib.sha256((url or "").encode()).hexdigest()[:16]
        self.keys: dict[str, jwk.Key] = {}
        self.fetched_at = 0.0
        """Wall-clock time the held document was fetched from the Auth Server (shared via Redis)."""
        self._refetch_at = 0.0  # monotonic: earliest refetch for an unknown kid
        self._retry_at = 0.0  # monotonic: earliest retry after a failed load
        self._generation = 0  # bumped by every finished load attempt
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None
        self._background: asyncio.Task[None] | None = None

    @property
    def stale(self) -> bool:
        return time.time() - self.fetched_at >= self.ttl

    async def find(self, kid: str) -> jwk.Key | None:
        """The key for ``kid``; ``None`` when the Auth Server does not publish it.

        Raises :class:`JwksUnavailable` when no key at all could be loaded.
        """
        key = self.keys.get(kid)
        if key is not None:
            if self.stale:
                self._refresh_in_background()
            return key
        await self.refresh(unknown_kid=kid if self.keys else None)
        key = self.keys.get(kid)
        if key is None and not self.keys:
            raise JwksUnavailable("no signing key could be loaded")
        return key

    async def ensure_loaded(self) -> None:
        """Readiness: load the keys if none are held; raise when that fails."""
        if not self.keys:
            await self.refresh()
        if not self.keys:
            raise JwksUnavailable("no signing key could be loaded")

    async def refresh(self, unknown_kid: str | None = None) -> None:
        """Load the key set once, however many callers ask at the same time.

        An unknown ``kid`` refetches at most once per cooldown; a failed load is retried
        after ``EMPTY_RETRY_SECONDS`` when nothing is known, else after the cooldown.
        """
        seen = self._generation
        async with self._loop_lock():
            if self._generation != seen:
                return  # a load finished while we waited: use its result
            now = time.monotonic()
            if unknown_kid is not None:
                if now < self._refetch_at:
                    return
                self._refetch_at = now + self.cooldown
            elif now < self._retry_at:
                return
            try:
                await self._load(unknown_kid)
            finally:
                self._generation += 1

    def _refresh_in_background(self) -> None:
        """Hourly refresh without making a request wait; the held keys serve meanwhile."""
        if self._background is not None and not self._background.done():
            return
        if time.monotonic() < self._retry_at:
            return
        self._background = asyncio.get_running_loop().create_task(self.refresh())

    def _loop_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        return self._lock

    async def _load(self, unknown_kid: str | None) -> None:
        shared = await self._read_shared()
        if shared is not None:
            fetched_at, keys = shared
            if fetched_at > self.fetched_at and (unknown_kid is None or unknown_kid in keys):
                self._adopt(keys, fetched_at)
                return
        if not self.url:
            log.warning("SOUNDHIVE_AUTH_JWKS_URL is not set: bearer tokens cannot be verified")
            self._failed()
            return
        try:
            keys = parse_jwks(await self._fetch(self.url))
        except (httpx.HTTPError, ValueError) as exc:
            reason, known = type(exc).__name__, len(self.keys)
            log.warning("JWKS fetch failed (%s); keeping %d known key(s)", reason, known)
            self._failed()
            return
        fetched_at = time.time()
        self._adopt(keys, fetched_at)
        await self._write_shared(keys, fetched_at)

    def _adopt(self, keys: dict[str, jwk.Key], fetched_at: float) -> None:
        self.keys, self.fetched_at = keys, fetched_at
        self._retry_at = 0.0

    def _failed(self) -> None:
        delay = self.cooldown if self.keys else min(self.cooldown, EMPTY_RETRY_SECONDS)
        self._retry_at = time.monotonic() + delay

    async def _fetch(self, url: str) -> Any:
        """GET the JWKS with a short timeout, no redirects, and a size cap."""
        body = bytearray()
        async with (
            httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as client,
            client.stream("GET", url, headers={"Accept": "application/json"}) as response,
        ):
            response.raise_for_status()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise ValueError("JWKS document too large")
        return json.loads(body)

    async def _read_shared(self) -> tuple[float, dict[str, jwk.Key]] | None:
        cache = self._cache()
        if cache is None:
            return None
        value = await cache.get(CACHE_NAMESPACE, self._suffix)
        if not isinstance(value, dict) or not isinstance(value.get("fetched_at"), (int, float)):
            return None
        try:
            return float(value["fetched_at"]), parse_jwks(value.get("jwks"))
        except ValueError:
            return None

    async def _write_shared(self, keys: dict[str, jwk.Key], fetched_at: float) -> None:
        cache = self._cache()
        if cache is None:
            return
        document = {"keys": [key.as_dict(private=False) for key in keys.values()]}
        await cache.set(CACHE_NAMESPACE, self._suffix, {"fetched_at": fetched_at, "jwks": document})
