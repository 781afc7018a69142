"""play-history-tracking over real HTTP, on the real PostgreSQL and Redis of the test session.

Bans go through ``skills.user_profile.api`` on a kernel of the test's own event loop, as
admin-moderation will call it; everything else is plain HTTP.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import redis

from skills.play_history_tracking.rules import qualifies, threshold_ms, window_seconds
from tests.music_helpers import ready_track, sql, upload, wav_bytes

HISTORY = "/api/v1/users/me/history"
PROBLEM = "application/problem+json"
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


# -- helpers --------------------------------------------------------------------------------
def play(
    client: httpx.Client, track_id: str, headers: dict[str, str] | None = None, **body: Any
) -> httpx.Response:
    """``POST /tracks/{id}/play``; with no ``body`` keywords the request has no body at all."""
    url = f"/api/v1/tracks/{track_id}/play"
    if body:
        return client.post(url, json=body, headers=headers)
    return client.post(url, headers=headers)


def played(
    client: httpx.Client, track_id: str, headers: dict[str, str] | None = None, **body: Any
) -> dict[str, Any]:
    response = play(client, track_id, headers, **body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    assert set(result) == {"counted", "play_count"}
    return result


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["code"] == code and body["status"] == status and body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]
    return body


def user(api: Any, sub: str) -> tuple[dict[str, str], str]:
    """Headers for ``sub`` (one token, reused) and the id of its provisioned profile."""
    headers = api.auth(sub)
    response = api.get("/api/v1/users/me", headers=headers)
    assert response.status_code == 200, response.text
    return headers, response.json()["id"]


def set_duration(services: Any, track_id: str, duration_ms: int | None) -> None:
    sql(services, "UPDATE tracks SET duration_ms = %s WHERE id = %s", duration_ms, track_id)
    redis.Redis.from_url(services.redis_url).delete(f"sh:track:{track_id}")


def stored_plays(services: Any, track_id: str) -> list[tuple[Any, ...]]:
    """(user_id as text or None, played_ms, counted), oldest first."""
    return sql(
        services,
        "SELECT user_id::text, played_ms, counted FROM play_history WHERE track_id = %s "
        "ORDER BY id",
        track_id,
    )


def play_count(services: Any, track_id: str) -> int:
    return int(sql(services, "SELECT play_count FROM tracks WHERE id = %s", track_id)[0][0])


def played_events(services: Any) -> list[dict[str, Any]]:
    rows = sql(
        services, "SELECT payload FROM core_outbox WHERE type = 'track.played' ORDER BY occurred_at"
    )
    return [row[0] for row in rows]


def together(calls: list[Callable[[], httpx.Response]]) -> list[httpx.Response]:
    """Run the calls at the same moment from as many threads."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], httpx.Response]) -> httpx.Response:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


@pytest.fixture
async def kernel(make_settings: Callable[..., Any], api: Any) -> AsyncIterator[Any]:
    """A kernel on this test's event loop (the live server's engine belongs to its own loop)."""
    from core.kernel import Kernel

    k = Kernel(make_settings())
    yield k
    await k.aclose()


# -- the counting rule ----------------------------------------------------------------------
def test_navidrome_rule_at_the_boundaries() -> None:
    assert threshold_ms(180_000) == 90_000
    assert not qualifies(89_999, 180_000) and qualifies(90_000, 180_000)
    assert threshold_ms(180_001) == 90_001  # half, rounded up: 90 000 is less than 50 %
    assert not qualifies(90_000, 180_001)
    assert threshold_ms(600_000) == 240_000  # the 240 s cap
    assert qualifies(240_000, 600_000) and not qualifies(239_999, 600_000)
    assert qualifies(None, 180_000) and qualifies(None, None)
    for unknown in (None, 0, -5):
        assert threshold_ms(unknown) == 30_000
    assert not qualifies(29_999, None) and qualifies(30_000, None)
    assert [window_seconds(d) for d in (180_000, 600_000, None, 1_500, 1)] == [90, 240, 30, 1, 1]


def test_play_counts_by_navidrome_rule_over_http(api: Any, soundhive_services: Any) -> None:
    owner, _ = user(api, "rule-owner")
    track = ready_track(api, soundhive_services, owner, title="Three minutes")
    assert track["duration_ms"] == 180_000 and track["play_count"] == 0
    tid = track["id"]
    listeners = [user(api, f"rule-{n}") for n in range(6)]

    assert played(api, tid, listeners[0][0], played_ms=89_999) == {
        "counted": False,
        "play_count": 0,
    }
    assert played(api, tid, listeners[1][0], played_ms=90_000) == {"counted": True, "play_count": 1}
    set_duration(soundhive_services, tid, 600_000)  # ten minutes: the 240 s cap applies
    assert played(api, tid, listeners[2][0], played_ms=239_999)["counted"] is False
    assert played(api, tid, listeners[3][0], played_ms=240_000) == {
        "counted": True,
        "play_count": 2,
    }
    assert played(api, tid, listeners[4][0]) == {"counted": True, "play_count": 3}  # no body
    assert played(api, tid, listeners[5][0], played_ms=None) == {"counted": True, "play_count": 4}

    assert api.get(f"/api/v1/tracks/{tid}").json()["play_count"] == 4  # cache invalidated
    ids = [listener_id for _, listener_id in listeners]
    assert stored_plays(soundhive_services, tid) == [
        (ids[0], 89_999, False),
        (ids[1], 90_000, True),
        (ids[2], 239_999, False),
        (ids[3], 240_000, True),
        (ids[4], None, True),
        (ids[5], None, True),
    ]
    events = played_events(soundhive_services)
    assert events[0] == {"track_id": tid, "user_id": ids[1], "counted": True, "played_ms": 90_000}
    assert [e["user_id"] for e in events] == [ids[1], ids[3], ids[4], ids[5]]  # counted only


def test_unknown_duration_needs_thirty_seconds(api: Any, soundhive_services: Any) -> None:
    owner, _ = user(api, "nodur-owner")
    tid = ready_track(api, soundhive_services, owner)["id"]
    set_duration(soundhive_services, tid, None)
    assert played(api, tid, user(api, "nodur-a")[0], played_ms=29_999)["counted"] is False
    assert played(api, tid, user(api, "nodur-b")[0], played_ms=30_000)["counted"] is True


def test_invalid_reports_are_422_and_count_nothing(api: Any, soundhive_services: Any) -> None:
    owner, _ = user(api, "bad-owner")
    tid = ready_track(api, soundhive_services, owner)["id"]
    for body in (
        {"played_ms": -1},
        {"played_ms": "90000"},
        {"played_ms": 90_000.5},
        {"played_ms": True},
        {"played_ms": 86_400_001},
        {"played_ms": 1, "counted": True},
        [1],
    ):
        response = api.post(f"/api/v1/tracks/{tid}/play", json=body, headers=owner)
        errors = problem(response, 422, "VALIDATION_FAILED")["errors"]
        assert errors and all({"loc", "msg"} <= set(e) for e in errors), body
    problem(api.post("/api/v1/tracks/not-a-uuid/play", headers=owner), 422, "VALIDATION_FAILED")
    assert play_count(soundhive_services, tid) == 0 and stored_plays(soundhive_services, tid) == []


# -- anti-inflation -------------------------------------------------------------------------
def test_repeated_plays_count_once_per_window(api: Any, soundhive_services: Any) -> None:
    owner, _ = user(api, "rep-owner")
    me, me_id = user(api, "rep-listener")
    tid = ready_track(api, soundhive_services, owner)["id"]
    results = [played(api, tid, me, played_ms=120_000) for _ in range(3)]
    assert results == [
        {"counted": True, "play_count": 1},
        {"counted": False, "play_count": 1},
        {"counted": False, "play_count": 1},
    ]
    cache = redis.Redis.from_url(soundhive_services.redis_url)
    key = f"sh:play-window:u:{me_id}:{tid}"
    assert 85 <= cache.ttl(key) <= 90  # the window is the 90 s threshold of a 3-minute track
    # every play is in the history, only one counted
    assert [e["counted"] for e in api.get(HISTORY, headers=me).json()["items"]] == [
        False,
        False,
        True,
    ]
    # another listener is not held back by my window
    assert played(api, tid, user(api, "rep-other")[0]) == {"counted": True, "play_count": 2}

    short = ready_track(api, soundhive_services, owner, title="Jingle")["id"]
    set_duration(soundhive_services, short, 1_500)  # threshold 750 ms: a 1 s window
    assert played(api, short, me)["counted"] is True
    assert played(api, short, me)["counted"] is False
    time.sleep(1.2)
    assert played(api, short, me) == {"counted": True, "play_count": 2}


def test_twenty_concurrent_plays_by_twenty_users_count_twenty(
    api: Any, soundhive_services: Any, live_server: Any
) -> None:
    owner, _ = user(api, "crowd-owner")
    tid = ready_track(api, soundhive_services, owner)["id"]
    listeners = [user(api, f"crowd-{n}")[0] for n in range(20)]
    with httpx.Client(base_url=live_server.url, timeout=30) as client:
        responses = together([lambda h=h: play(client, tid, h) for h in listeners])
    assert all(r.status_code == 200 and r.json()["counted"] for r in responses), [
        r.text for r in responses
    ]
    assert sorted(r.json()["play_count"] for r in responses) == list(range(1, 21))
    assert play_count(soundhive_services, tid) == 20
    assert api.get(f"/api/v1/tracks/{tid}").json()["play_count"] == 20
    assert redis.Redis.from_url(soundhive_services.redis_url).hget(f"sh:track:{tid}", "play") == (
        b"20"
    )  # the entry stayed cached: each play added its 1
    assert len(stored_plays(soundhive_services, tid)) == 20
    assert len(played_events(soundhive_services)) == 20


def test_counted_plays_keep_the_track_cached_with_exact_counts(
    api: Any, soundhive_services: Any
) -> None:
    """A counted play adds 1 to the cached track after its commit instead of evicting it: the
    next play (status, duration) and the next read are served from the cache, exactly."""
    owner, _ = user(api, "kc-owner")
    me, _ = user(api, "kc-listener")
    tid = ready_track(api, soundhive_services, owner)["id"]  # leaves sh:track:<id> cached
    cache = redis.Redis.from_url(soundhive_services.redis_url)
    key = f"sh:track:{tid}"
    meta = json.loads(cache.hget(key, "d"))  # type: ignore[arg-type]
    cache.hset(key, "d", json.dumps({**meta, "title": "still cached"}))  # gone if evicted

    def shown() -> tuple[str, int]:
        body = api.get(f"/api/v1/tracks/{tid}").json()
        return body["title"], body["play_count"]

    assert played(api, tid, me) == {"counted": True, "play_count": 1}
    assert shown() == ("still cached", 1) and play_count(soundhive_services, tid) == 1
    assert played(api, tid, me) == {"counted": False, "play_count": 1}  # window: no delta
    assert played(api, tid, user(api, "kc-other")[0], played_ms=10) == {
        "counted": False,
        "play_count": 1,
    }
    assert played(api, tid) == {"counted": True, "play_count": 2}  # anonymous
    assert shown() == ("still cached", 2) and play_count(soundhive_services, tid) == 2
    assert cache.hget(key, "play") == b"2"

    cache.delete(key)  # a counted play without an entry creates none; the next read loads it
    assert played(api, tid, user(api, "kc-third")[0])["play_count"] == 3
    assert shown() == ("Night walk", 3)


def test_twenty_concurrent_plays_by_one_user_count_once(
    api: Any, soundhive_services: Any, live_server: Any
) -> None:
    owner, _ = user(api, "spam-owner")
    me, me_id = user(api, "spammer")
    tid = ready_track(api, soundhive_services, owner)["id"]
    with httpx.Client(base_url=live_server.url, timeout=30) as client:
        responses = together([lambda: play(client, tid, me, played_ms=100_000)] * 20)
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    assert sum(r.json()["counted"] for r in responses) == 1
    assert play_count(soundhive_services, tid) == 1
    rows = stored_plays(soundhive_services, tid)
    assert len(rows) == 20 and sum(counted for *_, counted in rows) == 1
    assert {user_id for user_id, *_ in rows} == {me_id}
    assert len(played_events(soundhive_services)) == 1


def test_route_rate_limit(api: Any, soundhive_services: Any) -> None:
    owner, _ = user(api, "rl-owner")
    tid = ready_track(api, soundhive_services, owner)["id"]
    me, _ = user(api, "rl-listener")
    if time.time() % 60 > 50:  # the limit is a fixed one-minute window: stay inside one
        time.sleep(61 - time.time() % 60)
    for _ in range(120):
        assert play(api, tid, me, played_ms=1).status_code == 200
    refused = play(api, tid, me, played_ms=1)
    body = problem(refused, 429, "RATE_LIMITED")
    assert "plays" in body["detail"]
    assert int(refused.headers["retry-after"]) >= 1
    assert "120;w=60" in refused.headers.get_list("ratelimit-policy")
    assert len(stored_plays(soundhive_services, tid)) == 120  # the refused play left no row
    assert play(api, tid, user(api, "rl-other")[0]).status_code == 200  # per caller


# -- anonymous plays ------------------------------------------------------------------------
def test_anonymous_play_counts_but_is_in_no_history(api: Any, soundhive_services: Any) -> None:
    owner, owner_id = user(api, "anon-owner")
    tid = ready_track(api, soundhive_services, owner)["id"]
    assert played(api, tid) == {"counted": True, "play_count": 1}
    assert played(api, tid) == {"counted": False, "play_count": 1}  # same client IP, same window
    assert played(api, tid, played_ms=5) == {"counted": False, "play_count": 1}
    cache = redis.Redis.from_url(soundhive_services.redis_url)
    assert cache.exists(f"sh:play-window:ip:127.0.0.1:{tid}")

    # only the counted play is kept, with no identity at all
    assert stored_plays(soundhive_services, tid) == [(None, None, True)]
    assert played_events(soundhive_services) == [
        {"track_id": tid, "user_id": None, "counted": True, "played_ms": None}
    ]
    for headers in (owner, user(api, "anon-bystander")[0]):
        page = api.get(HISTORY, headers=headers).json()
        assert page == {"items": [], "next_cursor": None}
    problem(api.get(HISTORY), 401, "UNAUTHORIZED")
    # a bad token is refused, never taken for an anonymous play
    problem(play(api, tid, {"Authorization": "Bearer junk"}), 401, "UNAUTHORIZED")
    assert play_count(soundhive_services, tid) == 1 and owner_id


# -- visibility -----------------------------------------------------------------------------
def test_only_visible_ready_tracks_can_be_played(api: Any, soundhive_services: Any) -> None:
    owner, _ = user(api, "vis-owner")
    other, _ = user(api, "vis-other")
    private = ready_track(api, soundhive_services, owner, title="Secret", visibility="private")
    unlisted = ready_track(api, soundhive_services, owner, title="Link", visibility="unlisted")
    processing = upload(api, owner, wav_bytes(seconds=1), content_type="audio/wav").json()

    for headers in (other, None):
        problem(play(api, private["id"], headers), 404, "TRACK_NOT_FOUND")
        problem(play(api, processing["id"], headers), 404, "TRACK_NOT_FOUND")
    problem(play(api, str(uuid.uuid4()), other), 404, "TRACK_NOT_FOUND")
    problem(play(api, processing["id"], owner), 404, "TRACK_NOT_READY")
    assert stored_plays(soundhive_services, private["id"]) == []

    assert played(api, private["id"], owner)["counted"] is True  # owners may play their own
    assert played(api, unlisted["id"], other)["counted"] is True  # anyone with the link
    moderator = api.auth("vis-mod", "moderator")
    assert played(api, private["id"], moderator)["counted"] is True
    assert play_count(soundhive_services, private["id"]) == 2
    seen = api.get(HISTORY, headers=moderator).json()["items"]
    assert [e["track"]["title"] for e in seen] == ["Secret"]  # moderators see everything


def test_history_shows_only_tracks_still_visible(api: Any, soundhive_services: Any) -> None:
    owner, _ = user(api, "hv-owner")
    me, _ = user(api, "hv-listener")
    becomes_private = ready_track(api, soundhive_services, owner, title="Soon private")
    gets_hidden = ready_track(api, soundhive_services, owner, title="Soon hidden")
    stays = ready_track(api, soundhive_services, owner, title="Stays")
    for track in (becomes_private, gets_hidden, stays):
        played(api, track["id"], me)
        played(api, track["id"], owner)

    def titles(headers: dict[str, str]) -> list[str]:
        return [e["track"]["title"] for e in api.get(HISTORY, headers=headers).json()["items"]]

    assert titles(me) == ["Stays", "Soon hidden", "Soon private"]
    r = api.patch(
        f"/api/v1/tracks/{becomes_private['id']}", json={"visibility": "private"}, headers=owner
    )
    assert r.status_code == 200, r.text
    sql(soundhive_services, "UPDATE tracks SET is_hidden = true WHERE id = %s", gets_hidden["id"])
    assert titles(me) == ["Stays"]
    assert titles(owner) == ["Stays", "Soon hidden", "Soon private"]  # owners still see theirs


def test_history_is_newest_first_and_paginated(api: Any, soundhive_services: Any) -> None:
    owner, _ = user(api, "page-owner")
    me, _ = user(api, "page-listener")
    tracks = [ready_track(api, soundhive_services, owner, title=f"T{n}") for n in range(3)]
    for track, ms in zip(tracks, (1_000, 2_000, 3_000), strict=True):
        played(api, track["id"], me, played_ms=ms)
    played(api, tracks[0]["id"], me, played_ms=4_000)  # replays show up again

    first = api.get(HISTORY, params={"limit": 3}, headers=me)
    assert first.status_code == 200, first.text
    page = first.json()
    assert set(page) == {"items", "next_cursor"} and page["next_cursor"]
    entry = page["items"][0]
    assert set(entry) == {"track", "played_at", "played_ms", "counted"}
    assert RFC3339_UTC.match(entry["played_at"])
    assert (
        entry["track"]["id"] == tracks[0]["id"]
        and entry["track"]["owner_id"] == tracks[0]["owner_id"]
    )
    assert {"title", "duration_ms", "play_count", "tags", "status"} <= set(entry["track"])
    assert [(e["track"]["title"], e["played_ms"]) for e in page["items"]] == [
        ("T0", 4_000),
        ("T2", 3_000),
        ("T1", 2_000),
    ]
    rest = api.get(HISTORY, params={"limit": 3, "cursor": page["next_cursor"]}, headers=me).json()
    assert [(e["track"]["title"], e["played_ms"]) for e in rest["items"]] == [("T0", 1_000)]
    assert rest["next_cursor"] is None
    times = [e["played_at"] for e in page["items"] + rest["items"]]
    assert times == sorted(times, reverse=True)

    assert len(api.get(HISTORY, headers=me).json()["items"]) == 4  # default limit 20
    problem(api.get(HISTORY, params={"cursor": "forged"}, headers=me), 422, "INVALID_CURSOR")
    for limit in (0, 101):
        problem(api.get(HISTORY, params={"limit": limit}, headers=me), 422, "VALIDATION_FAILED")
    assert api.get(HISTORY, headers=owner).json()["items"] == []  # only the caller's plays


# -- bans and deletion ----------------------------------------------------------------------
async def test_banned_account_cannot_play_but_reads_history(
    api: Any, kernel: Any, soundhive_services: Any
) -> None:
    from skills.user_profile import api as profiles

    owner, _ = user(api, "ban-owner")
    me, me_id = user(api, "ban-listener")
    tid = ready_track(api, soundhive_services, owner)["id"]
    played(api, tid, me)
    async with kernel.db.session() as session, profiles.transaction(kernel, session):
        assert await profiles.set_banned(session, uuid.UUID(me_id), True) is True

    body = problem(play(api, tid, me, played_ms=100_000), 403, "ACCOUNT_BANNED")
    assert "banned" in body["detail"]
    assert play_count(soundhive_services, tid) == 1
    assert len(stored_plays(soundhive_services, tid)) == 1
    assert len(api.get(HISTORY, headers=me).json()["items"]) == 1  # reading is still allowed

    async with kernel.db.session() as session, profiles.transaction(kernel, session):
        await profiles.set_banned(session, uuid.UUID(me_id), False)
    assert play(api, tid, me).status_code == 200


def test_deleting_a_track_removes_its_history(api: Any, soundhive_services: Any) -> None:
    owner, _ = user(api, "del-owner")
    me, _ = user(api, "del-listener")
    doomed = ready_track(api, soundhive_services, owner, title="Doomed")["id"]
    kept = ready_track(api, soundhive_services, owner, title="Kept")["id"]
    played(api, doomed, me)
    played(api, kept, me)
    played(api, doomed)  # an anonymous counted play
    assert len(stored_plays(soundhive_services, doomed)) == 2

    assert api.delete(f"/api/v1/tracks/{doomed}", headers=owner).status_code == 204
    assert stored_plays(soundhive_services, doomed) == []
    assert [e["track"]["title"] for e in api.get(HISTORY, headers=me).json()["items"]] == ["Kept"]
    problem(play(api, doomed, me), 404, "TRACK_NOT_FOUND")


def test_a_failed_play_releases_its_window(api: Any, soundhive_services: Any) -> None:
    """The track vanished behind a stale cache entry: 404, and the claimed window is given
    back so the play was never half-counted."""
    owner, _ = user(api, "gone-owner")
    me, me_id = user(api, "gone-listener")
    tid = ready_track(api, soundhive_services, owner)["id"]  # leaves sh:track:<id> cached
    sql(soundhive_services, "DELETE FROM tracks WHERE id = %s", tid)
    problem(play(api, tid, me), 404, "TRACK_NOT_FOUND")
    problem(play(api, tid, me, played_ms=1), 404, "TRACK_NOT_FOUND")  # uncounted path
    cache = redis.Redis.from_url(soundhive_services.redis_url)
    assert not cache.exists(f"sh:play-window:u:{me_id}:{tid}")
    assert played_events(soundhive_services) == []


# -- public API for other skills ------------------------------------------------------------
async def test_public_api_for_recommendations_and_trending(
    api: Any, kernel: Any, soundhive_services: Any
) -> None:
    from skills.play_history_tracking import api as plays

    owner, _ = user(api, "papi-owner")
    me, me_id = user(api, "papi-listener")
    a, b, c = (ready_track(api, soundhive_services, owner, title=t)["id"] for t in "ABC")
    played(api, a, me)
    played(api, b, me, played_ms=10)  # a skip: not counted
    played(api, c, me)
    played(api, a, me)  # within the window: stored, not counted
    played(api, a)  # anonymous, counted
    played(api, c, user(api, "papi-other")[0])

    now = datetime.now(UTC)
    async with kernel.db.session() as session:
        uid = uuid.UUID(me_id)
        # a's last play did not count: among counted plays, c is the most recent
        assert await plays.recent_track_ids(session, uid) == [uuid.UUID(c), uuid.UUID(a)]
        assert await plays.recent_track_ids(session, uid, counted_only=False) == [
            uuid.UUID(a),
            uuid.UUID(c),
            uuid.UUID(b),
        ]
        assert await plays.recent_track_ids(session, uid, 1, counted_only=False) == [uuid.UUID(a)]
        assert await plays.recent_track_ids(session, uid, 0) == []

        since = now - timedelta(hours=1)
        counts = await plays.windowed_play_counts(session, since)
        assert counts == {uuid.UUID(a): 2, uuid.UUID(c): 2}
        assert await plays.windowed_play_counts(session, now + timedelta(minutes=1)) == {}
        assert await plays.windowed_play_counts(session, since, now - timedelta(minutes=30)) == {}
        only = await plays.windowed_play_counts(session, since, track_ids=[uuid.UUID(c)])
        assert only == {uuid.UUID(c): 2}
        assert await plays.windowed_play_counts(session, since, track_ids=[]) == {}
        rows = (await session.execute(plays.windowed_play_counts_query(since))).all()
        assert sorted((str(t), n) for t, n in rows) == sorted([(a, 2), (c, 2)])


# -- Redis outage ---------------------------------------------------------------------------
def test_plays_work_and_stay_exact_without_redis(
    api: Any, soundhive_services: Any, make_settings: Any
) -> None:
    from core.app import create_app
    from core.testing.live import LiveServer

    owner, _ = user(api, "nored-owner")
    me, _ = user(api, "nored-listener")
    other, _ = user(api, "nored-other")
    tid = ready_track(api, soundhive_services, owner)["id"]
    settings = make_settings(redis_url="redis://127.0.0.1:1/0")
    with (
        LiveServer(create_app(settings)) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        responses = together([lambda: play(client, tid, me, played_ms=95_000)] * 20)
        assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
        assert sum(r.json()["counted"] for r in responses) == 1  # the history rows decide
        assert played(client, tid, other) == {"counted": True, "play_count": 2}
        # anonymous plays cannot be deduplicated without Redis: they do not count meanwhile
        assert played(client, tid) == {"counted": False, "play_count": 2}
        page = client.get(HISTORY, headers=me)
        assert page.status_code == 200 and len(page.json()["items"]) == 20
        assert client.get(f"/api/v1/tracks/{tid}").json()["play_count"] == 2
    assert play_count(soundhive_services, tid) == 2
    assert [r for r in stored_plays(soundhive_services, tid) if r[0] is None] == []
