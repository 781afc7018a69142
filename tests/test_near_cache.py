"""Near caches (core.nearcache): per-process copies of hot entries that every change drops in
every process, and that switch themselves off while invalidations cannot be heard."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from core.cache import Cache, Circuit, make_redis
from core.nearcache import CLEAR_ALL, NearCache
from core.skill import CacheKey
from core.testing.plugin import wait_for
from tests.faults_support import private_redis
from tests.ops_support import serve

DECLARED = {
    "demo": CacheKey("demo", 60, "near-cached", near_ttl_seconds=30),
    "plain": CacheKey("plain", 60, "Redis only"),
}


@contextlib.asynccontextmanager
async def process(url: str, declared: dict[str, CacheKey] | None = None) -> AsyncIterator[Cache]:
    """What one API process has: a Cache and its running invalidation listener."""
    client = make_redis(url)
    cache = Cache(client, declared or DECLARED, Circuit())
    listener = cache.listener(url)
    listener.start()
    try:
        await asyncio.wait_for(listener.subscribed.wait(), 5)
        yield cache
    finally:
        await listener.stop()
        await client.aclose()


async def eventually(check: Any, within: float = 3) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "not within the timeout"
        await asyncio.sleep(0.01)


def test_a_fill_racing_a_drop_is_not_kept() -> None:
    near = NearCache(ttl=30)
    near.active = True
    token = near.begin("k")
    near.drop(["k"])  # the change lands while the read is in flight
    near.fill("k", b"old", token)
    assert near.get("k") is None
    token = near.begin("k")
    near.fill("k", b"new", token)
    assert near.get("k") == b"new"
    near.drop([CLEAR_ALL])
    assert near.get("k") is None and len(near) == 0
    near.active = False  # not listening: nothing is kept or served
    near.fill("k", b"x", near.begin("k"))
    assert near.get("k") is None


def test_copies_expire_and_stay_bounded() -> None:
    near = NearCache(ttl=0.05, maxsize=3)
    near.active = True
    for key in "abcd":
        near.fill(key, key.encode(), near.begin(key))
    assert len(near) == 3 and near.get("a") is None and near.get("d") == b"d"
    wait_for(lambda: near.get("d") is None, timeout=2)


async def test_a_change_in_one_process_drops_the_copy_in_the_others(
    soundhive_services: Any,
) -> None:
    url = soundhive_services.redis_url
    raw = redis.asyncio.Redis.from_url(url)
    suffix = uuid.uuid4().hex
    try:
        async with process(url) as writer, process(url) as reader:
            await writer.set("demo", suffix, {"v": 1})
            # (the set's drop may reach the reader during its first read: then a later one)
            await eventually(lambda: _copied(reader, reader.near["demo"], {"v": 1}, suffix))
            # the reader now answers from memory: a write behind Cache's back is not seen
            await raw.set(writer.key("demo", suffix), b'{"v": "behind"}')
            assert await reader.get("demo", suffix) == {"v": 1}

            await writer.set("demo", suffix, {"v": 2})  # a change through Cache publishes
            await eventually(lambda: _equals(reader, suffix, {"v": 2}))
            await writer.invalidate("demo", suffix)
            await eventually(lambda: _equals(reader, suffix, None))

            await writer.set("demo", suffix, {"v": 3})
            assert await reader.get("demo", suffix) == {"v": 3}
            await writer.invalidate_namespace("demo")
            await eventually(lambda: _equals(reader, suffix, None))

            # a seed (SET NX) replaces nothing, so it publishes nothing; namespaces without
            # near_ttl_seconds are never copied
            await writer.set("plain", suffix, {"v": 1})
            assert await reader.get("plain", suffix) == {"v": 1}
            await raw.set(writer.key("plain", suffix), b'{"v": "behind"}')
            assert await reader.get("plain", suffix) == {"v": "behind"}
            assert "plain" not in reader.near
    finally:
        await raw.aclose()


async def _equals(cache: Cache, suffix: str, expected: Any) -> bool:
    return bool(await cache.get("demo", suffix) == expected)


async def test_copies_are_dropped_and_unused_while_redis_is_gone() -> None:
    with private_redis() as server:
        async with process(server.url) as cache:
            listener_near = cache.near["demo"]
            await cache.set("demo", "k", {"v": 1})
            # the set's own drop may reach the listener while the first read is in flight,
            # which then keeps no copy (a fill racing a drop): a later read keeps one
            await eventually(lambda: _copied(cache, listener_near, {"v": 1}))

            server.kill()  # changes published now could never reach us
            await eventually(lambda: _inactive(listener_near), within=10)
            assert listener_near.get("k") is None and len(listener_near) == 0
            assert await cache.get("demo", "k") is None  # Redis down: a bypass, not a stale copy

            server.start()  # an empty Redis: the old value is gone everywhere
            await eventually(lambda: _active(listener_near), within=10)
            assert await cache.get("demo", "k") is None
            # the circuit closes again (the first command on a pooled connection that died
            # with the old server fails once and trips it; then it answers)
            await eventually(lambda: _stores(cache, {"v": 2}), within=10)
            await eventually(lambda: _copied(cache, listener_near, {"v": 2}))


async def _copied(cache: Cache, near: NearCache, value: Any, suffix: str = "k") -> bool:
    """``cache`` reads ``value`` and keeps a copy of it."""
    return await cache.get("demo", suffix) == value and near.get(suffix) is not None


async def _stores(cache: Cache, value: Any) -> bool:
    cache.circuit.reset()
    await cache.set("demo", "k", value)
    return bool(await cache.get("demo", "k") == value)


async def _inactive(near: NearCache) -> bool:
    return not near.active


async def _active(near: NearCache) -> bool:
    return near.active


@pytest.mark.integration
def test_a_ban_reaches_every_api_process_at_once(
    soundhive_env: dict[str, str], migrated_database: str, jwks_server: Any, tmp_path: Path
) -> None:
    """Two API processes each hold the caller's account in memory; a ban made through one
    must refuse the next write on either, and a profile change must show on both."""
    env = {**os.environ, **soundhive_env, "SOUNDHIVE_DATA_DIR": str(tmp_path / "data")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    ada = {"Authorization": f"Bearer {jwks_server.mint(f'ada-{uuid.uuid4().hex[:6]}')}"}
    mod = {"Authorization": f"Bearer {jwks_server.mint('mod-near', roles=('moderator',))}"}
    with serve(env, tmp_path, "--workers", "2") as url:

        def each(method: str, path: str, headers: dict[str, str], **kw: Any) -> list[Any]:
            # a new connection per request: both processes answer some
            return [
                httpx.request(method, url + path, headers=headers, timeout=10, **kw)
                for _ in range(16)
            ]

        ada_id = each("GET", "/api/v1/users/me", ada)[0].json()["id"]
        assert {r.json()["is_banned"] for r in each("GET", "/api/v1/users/me", ada)} == {False}
        httpx.get(url + "/api/v1/users/me", headers=mod, timeout=10)

        renamed = httpx.patch(
            url + "/api/v1/users/me", json={"display_name": "Ada Two"}, headers=ada, timeout=10
        )
        assert renamed.status_code == 200
        names = {r.json()["display_name"] for r in each("GET", "/api/v1/users/me", ada)}
        assert names == {"Ada Two"}

        banned = httpx.post(
            f"{url}/api/v1/admin/users/{ada_id}/ban",
            json={"note": "spam"},
            headers=mod,
            timeout=10,
        )
        assert banned.status_code == 200, banned.text
        refused = each("PATCH", "/api/v1/users/me", ada, json={"display_name": "Still here"})
        assert {(r.status_code, r.json()["code"]) for r in refused} == {(403, "ACCOUNT_BANNED")}
        assert {r.json()["is_banned"] for r in each("GET", "/api/v1/users/me", ada)} == {True}

        # near hits reach the metrics within about a second (the listener adds them up)
        wait_for(lambda: near_hits(httpx.get(url + "/metrics", timeout=10).text) > 0, 10)


def near_hits(metrics: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("soundhive_cache_requests_total{")
        and 'namespace="user-profile"' in line
        and 'result="near"' in line
    )


async def test_a_counter_bump_in_one_process_reaches_the_copy_in_another(
    soundhive_services: Any,
) -> None:
    """music-streaming-basic's track hash publishes the drop from its own Lua script."""
    from skills.music_streaming_basic import track_cache

    url = soundhive_services.redis_url
    declared = {"track": CacheKey("track", 60, "near-cached", near_ttl_seconds=30)}
    track_id = str(uuid.uuid4())
    data = {
        "id": track_id,
        "title": "Night walk",
        "like_count": 2,
        "comment_count": 0,
        "play_count": 5,
    }
    async with process(url, declared) as writer, process(url, declared) as reader:
        await track_cache.seed(writer, track_id, data)
        assert (await track_cache.read(reader, track_id) or {})["like_count"] == 2
        assert reader.near["track"].get(track_id) is not None  # held in memory now

        await track_cache.bump(writer, track_id, likes=1, plays=2)

        async def bumped() -> bool:
            read = await track_cache.read(reader, track_id) or {}
            return (read.get("like_count"), read.get("play_count")) == (3, 7)

        await eventually(bumped)
        await track_cache.drop(writer, track_id)
        await eventually(lambda: _absent(reader, track_id))

        # a copy can outlive its hash (expired, deleted): a delta that finds no hash still
        # drops the copies, or they would show the old count until their own TTL
        await track_cache.seed(writer, track_id, data)
        assert (await track_cache.read(reader, track_id) or {})["like_count"] == 2
        await writer.client.delete(writer.key("track", track_id))  # type: ignore[union-attr]
        assert (await track_cache.read(reader, track_id) or {})["like_count"] == 2  # the copy
        await track_cache.bump(writer, track_id, likes=1)
        await eventually(lambda: _absent(reader, track_id))


async def _absent(cache: Cache, track_id: str) -> bool:
    from skills.music_streaming_basic import track_cache

    return await track_cache.read(cache, track_id) is None
