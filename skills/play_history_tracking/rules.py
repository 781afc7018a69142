"""When a play counts, and how long a listener must wait before the next one counts.

Pure functions, so the rule is tested at its boundaries without a server.
"""

from __future__ import annotations

MAX_THRESHOLD_MS = 240_000
"""Navidrome: a play counts at min(50 % of the duration, 240 s)."""
UNKNOWN_DURATION_THRESHOLD_MS = 30_000
"""Without a known duration, 30 s (Funkwhale records a listen after 15 s; we ask for more)."""
MAX_WINDOW_SECONDS = MAX_THRESHOLD_MS // 1000
WINDOW_NAMESPACE = "play-window"


def threshold_ms(duration_ms: int | None) -> int:
    """How much of the track must be played; 50 % rounded up, so 89 999 of 180 000 is short."""
    if not duration_ms or duration_ms <= 0:
        return UNKNOWN_DURATION_THRESHOLD_MS
    return min(-(-duration_ms // 2), MAX_THRESHOLD_MS)


def qualifies(played_ms: int | None, duration_ms: int | None) -> bool:
    """A report without ``played_ms`` counts (the client decided); otherwise Navidrome's rule."""
    return played_ms is None or played_ms >= threshold_ms(duration_ms)


def window_seconds(duration_ms: int | None) -> int:
    """At most one counted play per listener and track in this many seconds.

    It is the counting threshold itself: a person cannot finish two qualifying plays of the
    same track faster than that, so only scripts are held back (1 s at least).
    """
    return max(1, -(-threshold_ms(duration_ms) // 1000))
