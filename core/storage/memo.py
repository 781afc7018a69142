"""Presigned GET URLs, signed once per time bucket and reused within it.

Every track view signs a ``stream_url`` and every list item with a cover signs a
``cover_url``: SigV4 through botocore (S3) or an HMAC (local) per URL, which cost more CPU
than serving a cached track. Rounding the expiry *up* to a bucket boundary makes every
request within one bucket ask for the same URL, so it can be kept: a URL is then valid at
least as long as asked and at most one bucket (a tenth of the lifetime, at most a minute)
longer. Nothing is revoked by this: a URL is handed out only after the caller's access was
checked, and was always valid until its expiry.
"""

from __future__ import annotations

import time
from collections.abc import Hashable

MAX_BUCKET_SECONDS = 60


def rounded_expiry(seconds: int, now: float | None = None) -> int:
    """The Unix time a URL asked to last ``seconds`` from ``now`` expires at: rounded up to
    a bucket of ``seconds / 10`` (1 to 60 s)."""
    bucket = max(1, min(MAX_BUCKET_SECONDS, seconds // 10))
    moment = int(time.time() if now is None else now) + seconds
    return -(-moment // bucket) * bucket


class PresignMemo:
    """Signed URLs by ``(what was signed…, expiry)``; expired ones are dropped as it fills."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._urls: dict[tuple[Hashable, ...], str] = {}

    def get(self, key: tuple[Hashable, ...]) -> str | None:
        return self._urls.get(key)

    def put(self, key: tuple[Hashable, ...], url: str, expires_at: int) -> None:
        """Keep ``url`` (``key`` ends with ``expires_at``); when full, drop what expired,
        and everything if nothing did (a burst of distinct objects)."""
        if len(self._urls) >= self.max_entries:
            now = time.time()
            self._urls = {k: v for k, v in self._urls.items() if k[-1] > now}  # type: ignore[operator]
            if len(self._urls) >= self.max_entries:
                self._urls.clear()
        self._urls[key] = url
