"""The ``track`` cache entry: metadata beside live counters, so counters never evict it.

``sh:track:<id>`` is a Redis hash::

    d        the URL-free JSON of the track (``track_data`` + ``owner_visible``) without counters
    like     like_count      comment  comment_count      play  play_count

Likes, comments and plays change a counter far more often than anything else changes a track.
Deleting the whole entry on each of them (as a plain JSON value required) meant the next
write or read reloaded the track with three SELECTs and wrote it back; now a counter change
applies its delta to the hash after its commit (:func:`bump`, ``HINCRBY`` only if the hash
exists), and only metadata changes delete it (:func:`drop`).

Exactness: deltas commute, so concurrent writers need no ordering; the database stays the
source of truth. One race remains, as with any cache-aside entry: a reader that misses, reads
the row, and seeds the hash can interleave with a writer whose delta found no hash (the seed
then lacks it) or whose commit its read already saw but whose delta landed after the seed
(counted twice). Either error is at most the deltas of writers running during that reader's
few milliseconds, and it lasts until the entry's TTL (5 minutes; :func:`bump` never extends
it). Readers clamp counters at 0. A seed never overwrites an existing hash, so two missing
readers cannot undo a delta applied in between.

API processes also keep the hashes they read in memory (the namespace's near cache,
``core.nearcache``): a hot track costs no round trip. Every change drops those copies in
every process: :func:`drop` through ``Cache.invalidate``, :func:`bump` by publishing the drop
from its script, after the ``HINCRBY``.

Every call fails open like the kernel's ``Cache``: Redis errors are counted, trip its circuit
(``Cache.failed``) and readers fall through to PostgreSQL. A value of another type under
the key (a plain JSON string written by a process of the previous version during a rolling
deploy) reads as a miss and is replaced by the next seed.
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError, ResponseError

from core import metrics

if TYPE_CHECKING:
    from core.cache import Cache

NAMESPACE = "track"
COUNTERS = (("like", "like_count"), ("comment", "comment_count"), ("play", "play_count"))
"""(hash field, JSON field) of each counter."""
_COUNTER_FIELDS = frozenset(name for _, name in COUNTERS)
_META = b"d"

# Seed only when there is no hash yet: a hash that exists may already hold deltas newer than
# the caller's read. Anything else under the key (an older version's string) is replaced.
_SEED = """
local kind = redis.call('TYPE', KEYS[1]).ok
if kind == 'hash' then return 0 end
if kind ~= 'none' then redis.call('DEL', KEYS[1]) end
redis.call('HSET', KEYS[1], 'd', ARGV[1], 'like', ARGV[2], 'comment', ARGV[3], 'play', ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""

# Apply committed deltas only to a cached hash; a missing entry is loaded fresh by its next
# reader. The TTL is left alone so it keeps bounding the seed race described above. The
# near-cache drop is published either way: a process may still hold a copy of a hash that
# has since expired or been deleted.
_BUMP = """
if ARGV[4] ~= '' then redis.call('PUBLISH', ARGV[4], ARGV[5]) end
if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then return 0 end
local fields = {'like', 'comment', 'play'}
for i, field in ipairs(fields) do
  if ARGV[i] ~= '0' then redis.call('HINCRBY', KEYS[1], field, ARGV[i]) end
end
return 1
"""


def _key(cache: Cache, track_id: uuid.UUID | str) -> str:
    return cache.key(NAMESPACE, str(track_id))


def _count(result: str) -> None:
    metrics.CACHE_REQUESTS.labels(NAMESPACE, result).inc()


async def read(cache: Cache, track_id: uuid.UUID | str) -> dict[str, Any] | None:
    """The cached track with its current counters (the near copy, else one ``HGETALL``), or
    None on a miss or when Redis is unavailable."""
    if not cache.usable:
        _count("bypass")
        return None
    suffix = str(track_id)
    near = cache.near_cache(NAMESPACE)
    fields = near.get(suffix) if near is not None else None
    if fields is None:  # (a near hit is counted by the near cache itself)
        token = near.begin(suffix) if near is not None else None
        try:
            fields = await cache.client.hgetall(_key(cache, suffix))  # type: ignore[union-attr]
        except ResponseError as exc:
            if not str(exc).startswith("WRONGTYPE"):
                cache.failed(exc)
                _count("bypass")
                return None
            fields = {}  # an older version's plain value: a miss, the seed replaces it
        except (RedisError, OSError) as exc:
            cache.failed(exc)
            _count("bypass")
            return None
        if _META not in fields:
            _count("miss")
            return None
        _count("hit")
        if near is not None:
            near.fill(suffix, fields, token)  # never mutated: each read builds its own dict
    data: dict[str, Any] = json.loads(fields[_META])
    for field, name in COUNTERS:
        data[name] = max(0, int(fields.get(field.encode(), 0)))
    return data


async def seed(cache: Cache, track_id: uuid.UUID | str, data: dict[str, Any]) -> None:
    """Cache a track read from the database, unless a hash is already there."""
    if not cache.usable:
        return
    meta = {k: v for k, v in data.items() if k not in _COUNTER_FIELDS}
    counts = [int(data.get(name) or 0) for _, name in COUNTERS]
    try:
        await cache.script(_SEED)(
            keys=[_key(cache, track_id)],
            args=[json.dumps(meta, default=str), *counts, cache.ttl(NAMESPACE)],
        )
    except (RedisError, OSError) as exc:
        cache.failed(exc)


async def bump(
    cache: Cache, track_id: uuid.UUID | str, *, likes: int = 0, comments: int = 0, plays: int = 0
) -> None:
    """Add committed counter deltas to the cached hash, if there is one (after the commit).

    Tried even while the circuit is open, like an invalidation: a delta that never lands
    leaves the entry off by it until the TTL."""
    if cache.client is None or not (likes or comments or plays):
        return
    message = cache.drop_near(NAMESPACE, str(track_id))
    try:
        await cache.script(_BUMP)(
            keys=[_key(cache, track_id)],
            args=[likes, comments, plays, cache.channel if message else "", message or ""],
        )
    except (RedisError, OSError) as exc:
        cache.failed(exc)


async def drop(cache: Cache, *track_ids: uuid.UUID | str) -> None:
    """Delete entries whose metadata or visibility changed (after the commit)."""
    await cache.invalidate(NAMESPACE, *(str(t) for t in track_ids))
