"""interaction-like-comment over real HTTP, on the real PostgreSQL and Redis of the test session.

Concurrency cases fire many requests at the live server at once (httpx.AsyncClient) and then
compare the counters with the rows. Bans and moderation go through the public ``api`` modules
on a kernel of the test's own event loop, as admin-moderation will call them.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import httpx
import psycopg
import pytest
import redis

from core.testing.plugin import change_cached
from core.testing.services import plain_url
from tests.music_helpers import ready_track, sql, upload, wav_bytes

V1 = "/api/v1"
PROBLEM = "application/problem+json"
COMMENT_FIELDS = {
    "id",
    "track_id",
    "author_id",
    "body",
    "position_ms",
    "parent_id",
    "created_at",
    "updated_at",
    "author",
    "reply_count",
    "hidden",
}
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
MISSING = "00000000-0000-0000-0000-000000000000"


# -- helpers --------------------------------------------------------------------------------
@pytest.fixture
async def kernel(make_settings: Callable[..., Any], api: Any) -> AsyncIterator[Any]:
    """A kernel on this test's event loop (never the live server's, which has its own loop)."""
    from core.kernel import Kernel

    k = Kernel(make_settings())
    yield k
    await k.aclose()


async def ban(kernel: Any, user_id: str, banned: bool = True) -> None:
    from skills.user_profile import api as profiles

    async with kernel.db.session() as session, profiles.transaction(kernel, session):
        await profiles.set_banned(session, uuid.UUID(user_id), banned)


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["code"] == code and body["status"] == status and body["detail"]
    return body


def user(api: Any, sub: str, *roles: str) -> tuple[dict[str, str], str]:
    """Headers for ``sub`` and its (provisioned) profile id."""
    headers = api.auth(sub, *roles)
    response = api.get(f"{V1}/users/me", headers=headers)
    assert response.status_code == 200, response.text
    return headers, response.json()["id"]


def count(services: Any, statement: str, *params: Any) -> int:
    return int(sql(services, statement, *params)[0][0])


def counters(services: Any, track_id: str) -> tuple[int, int, int, int]:
    """(like_count, like rows, comment_count, comment rows) of a track."""
    row = sql(
        services,
        "SELECT like_count, (SELECT count(*) FROM likes WHERE track_id = t.id), comment_count,"
        " (SELECT count(*) FROM comments WHERE track_id = t.id) FROM tracks t WHERE id = %s",
        track_id,
    )[0]
    return row[0], row[1], row[2], row[3]


def track_entry(services: Any, track_id: str) -> dict[bytes, bytes]:
    """The cached hash of a track (``{}`` when not cached): ``d`` metadata, counters."""
    key = f"sh:track:{track_id}"
    cache = redis.Redis.from_url(services.redis_url)
    return cache.hgetall(key) if cache.type(key) == b"hash" else {}  # type: ignore[return-value]


def mark_cached_title(services: Any, track_id: str, title: str) -> None:
    """Change the title inside the cached metadata only: if a later write evicted the entry,
    reads would show the database's title again."""
    key = f"sh:track:{track_id}"
    cache = redis.Redis.from_url(services.redis_url)
    meta = json.loads(cache.hget(key, "d"))  # type: ignore[arg-type]
    cache.hset(key, "d", json.dumps({**meta, "title": title}))


def events(services: Any, event_type: str) -> list[dict[str, Any]]:
    rows = sql(
        services, "SELECT payload FROM core_outbox WHERE type = %s ORDER BY occurred_at", event_type
    )
    return [row[0] for row in rows]


def comment(api: Any, track_id: str, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    body.setdefault("body", "nice")
    response = api.post(f"{V1}/tracks/{track_id}/comments", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def walk(api: Any, url: str, headers: dict[str, str] | None = None, **params: Any) -> list[Any]:
    """Every item of a paginated list, following next_cursor; checks page sizes."""
    items: list[Any] = []
    cursor = None
    while True:
        query = params | ({"cursor": cursor} if cursor else {})
        response = api.get(url, params=query, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= params.get("limit", 20)
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


def track_of(api: Any, services: Any, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    return ready_track(api, services, headers, **fields)


# -- likes ----------------------------------------------------------------------------------
def test_like_and_unlike_are_idempotent_with_exact_counts_and_events(
    api: Any, soundhive_services: Any
) -> None:
    owner, owner_id = user(api, "like-owner")
    fan, fan_id = user(api, "like-fan")
    track = track_of(api, soundhive_services, owner)  # the detail is now cached
    url = f"{V1}/tracks/{track['id']}/like"

    for _ in range(3):
        response = api.post(url, headers=fan)
        assert response.status_code == 200, response.text
        assert response.json() == {"liked": True, "like_count": 1}
    assert counters(soundhive_services, track["id"])[:2] == (1, 1)
    assert api.get(f"{V1}/tracks/{track['id']}").json()["like_count"] == 1  # cache invalidated
    assert api.get(url, headers=fan).json() == {"liked": True, "like_count": 1}
    assert api.get(url, headers=owner).json() == {"liked": False, "like_count": 1}
    problem(api.get(url), 401, "UNAUTHORIZED")

    for _ in range(2):
        assert api.delete(url, headers=fan).json() == {"liked": False, "like_count": 0}
    assert counters(soundhive_services, track["id"])[:2] == (0, 0)
    assert api.get(f"{V1}/tracks/{track['id']}").json()["like_count"] == 0

    payload = {"track_id": track["id"], "user_id": fan_id, "owner_id": owner_id}
    assert events(soundhive_services, "track.liked") == [payload]
    assert events(soundhive_services, "track.unliked") == [payload]
    # owners may like their own tracks, private ones included
    private = track_of(api, soundhive_services, owner, visibility="private")
    mine = api.post(f"{V1}/tracks/{private['id']}/like", headers=owner)
    assert mine.json() == {"liked": True, "like_count": 1}


async def test_forty_users_like_one_track_at_once(api: Any, soundhive_services: Any) -> None:
    owner, _ = user(api, "crowd-owner")
    track = track_of(api, soundhive_services, owner)
    fans = [user(api, f"crowd-{i}") for i in range(40)]
    url = f"{V1}/tracks/{track['id']}/like"

    async with httpx.AsyncClient(base_url=str(api.base_url), timeout=60) as client:
        responses = await asyncio.gather(*(client.post(url, headers=h) for h, _ in fans))
    assert [r.status_code for r in responses] == [200] * 40, [r.text for r in responses]
    assert all(r.json()["liked"] is True for r in responses)
    assert sorted(r.json()["like_count"] for r in responses)[-1] == 40
    assert counters(soundhive_services, track["id"])[:2] == (40, 40)
    assert track_entry(soundhive_services, track["id"])[b"like"] == b"40"  # cached all along
    assert api.get(f"{V1}/tracks/{track['id']}").json()["like_count"] == 40
    assert len(events(soundhive_services, "track.liked")) == 40

    likers = walk(api, f"{V1}/tracks/{track['id']}/likes", limit=7)
    assert len(likers) == 40 and {p["id"] for p in likers} == {fan_id for _, fan_id in fans}
    liked_at = [ts(p["liked_at"]) for p in likers]
    assert liked_at == sorted(liked_at, reverse=True)


async def test_concurrent_like_unlike_storm_keeps_count_equal_to_rows(
    api: Any, soundhive_services: Any
) -> None:
    owner, _ = user(api, "storm-owner")
    track = track_of(api, soundhive_services, owner)
    url = f"{V1}/tracks/{track['id']}/like"
    fans = [user(api, f"storm-{i}")[0] for i in range(25)]
    rng = random.Random(7)
    # each user sends several likes and unlikes at once, repeats included
    calls = [(h, rng.choice(("POST", "DELETE"))) for h in fans for _ in range(4)]
    rng.shuffle(calls)

    async with httpx.AsyncClient(base_url=str(api.base_url), timeout=60) as client:
        for _ in range(2):
            responses = await asyncio.gather(
                *(client.request(method, url, headers=h) for h, method in calls)
            )
            assert {r.status_code for r in responses} == {200}, [r.text for r in responses]
    like_count, rows, _, _ = counters(soundhive_services, track["id"])
    assert like_count == rows
    liked = len(events(soundhive_services, "track.liked"))
    assert liked > 0
    assert liked - len(events(soundhive_services, "track.unliked")) == rows
    assert api.get(f"{V1}/tracks/{track['id']}").json()["like_count"] == rows
    assert len(walk(api, f"{V1}/tracks/{track['id']}/likes", limit=100)) == rows


async def test_likes_lists_show_only_what_the_caller_may_see(
    api: Any, soundhive_services: Any, kernel: Any
) -> None:
    owner, owner_id = user(api, "lists-owner")
    fan, fan_id = user(api, "lists-fan")
    other, other_id = user(api, "lists-other")
    public = track_of(api, soundhive_services, owner, title="public")
    unlisted = track_of(api, soundhive_services, owner, title="unlisted", visibility="unlisted")
    soon_private = track_of(api, soundhive_services, owner, title="soon private")
    gone = track_of(api, soundhive_services, owner, title="gone")
    own_private = track_of(api, soundhive_services, fan, title="mine", visibility="private")
    for track in (public, unlisted, soon_private, gone, own_private):
        assert api.post(f"{V1}/tracks/{track['id']}/like", headers=fan).status_code == 200

    mine = walk(api, f"{V1}/users/me/likes", fan, limit=2)
    assert [t["title"] for t in mine] == ["mine", "gone", "soon private", "unlisted", "public"]
    assert all(RFC3339_UTC.match(t["liked_at"]) for t in mine)
    assert mine[-1]["like_count"] == 1 and mine[-1]["owner_id"] == owner_id

    patch = {"visibility": "private"}
    assert api.patch(f"{V1}/tracks/{soon_private['id']}", json=patch, headers=owner).is_success
    assert api.delete(f"{V1}/tracks/{gone['id']}", headers=owner).status_code == 204
    mine = walk(api, f"{V1}/users/me/likes", fan)
    assert [t["title"] for t in mine] == ["mine", "unlisted", "public"]
    assert walk(api, f"{V1}/users/me/likes", other) == []
    problem(api.get(f"{V1}/users/me/likes"), 401, "UNAUTHORIZED")
    bad = api.get(f"{V1}/users/me/likes", params={"cursor": "garbage"}, headers=fan)
    problem(bad, 422, "INVALID_CURSOR")

    # who liked: a banned liker drops out for everyone but moderators; the count keeps rows
    api.post(f"{V1}/tracks/{public['id']}/like", headers=other)
    likers = api.get(f"{V1}/tracks/{public['id']}/likes").json()
    assert [p["id"] for p in likers["items"]] == [other_id, fan_id]
    assert {"handle", "display_name", "avatar_url", "liked_at"} <= set(likers["items"][0])
    assert "email" not in likers["items"][0] and likers["next_cursor"] is None
    await ban(kernel, other_id)
    likers = api.get(f"{V1}/tracks/{public['id']}/likes").json()["items"]
    assert [p["id"] for p in likers] == [fan_id]
    moderator = api.auth("lists-mod", "moderator")
    assert len(api.get(f"{V1}/tracks/{public['id']}/likes", headers=moderator).json()["items"]) == 2
    problem(api.get(f"{V1}/tracks/{own_private['id']}/likes"), 404, "TRACK_NOT_FOUND")
    assert counters(soundhive_services, public["id"])[:2] == (2, 2)


def test_counter_changes_keep_the_track_cached_with_exact_counts(
    api: Any, soundhive_services: Any
) -> None:
    """Likes and comments add their delta to the cached track instead of evicting it: reads
    right after each write show the database's counts while the metadata stays cached."""
    owner, _ = user(api, "kept-owner")
    fan, _ = user(api, "kept-fan")
    track = track_of(api, soundhive_services, owner)  # the detail read cached it
    tid = track["id"]
    assert set(track_entry(soundhive_services, tid)) == {b"d", b"like", b"comment", b"play"}
    mark_cached_title(soundhive_services, tid, "still cached")
    ttl = redis.Redis.from_url(soundhive_services.redis_url).ttl(f"sh:track:{tid}")
    like = f"{V1}/tracks/{tid}/like"

    def exact(likes: int, comments: int) -> None:
        body = api.get(f"{V1}/tracks/{tid}", headers=fan).json()
        assert body["title"] == "still cached"  # never evicted
        assert (body["like_count"], body["comment_count"]) == (likes, comments)
        assert counters(soundhive_services, tid) == (likes, likes, comments, comments)

    assert api.post(like, headers=fan).json() == {"liked": True, "like_count": 1}
    exact(1, 0)
    assert api.post(like, headers=fan).json() == {"liked": True, "like_count": 1}  # repeat
    assert api.post(like, headers=owner).json() == {"liked": True, "like_count": 2}
    exact(2, 0)
    parent = comment(api, tid, fan)
    comment(api, tid, owner, parent_id=parent["id"])
    exact(2, 2)
    assert api.delete(f"{V1}/comments/{parent['id']}", headers=fan).status_code == 204
    exact(2, 0)  # the reply went with its parent: -2 in one delta
    assert api.delete(like, headers=fan).json() == {"liked": False, "like_count": 1}
    assert api.delete(like, headers=fan).json() == {"liked": False, "like_count": 1}
    exact(1, 0)
    left = redis.Redis.from_url(soundhive_services.redis_url).ttl(f"sh:track:{tid}")
    assert 0 < left <= ttl  # deltas never extend the entry's life

    # a metadata change still drops the entry; the reload shows the database again
    assert api.patch(f"{V1}/tracks/{tid}", json={"title": "Edited"}, headers=owner).is_success
    body = api.get(f"{V1}/tracks/{tid}").json()
    assert (body["title"], body["like_count"], body["comment_count"]) == ("Edited", 1, 0)
    assert json.loads(track_entry(soundhive_services, tid)[b"d"])["title"] == "Edited"


def test_a_like_without_a_cached_entry_is_read_exactly_later(
    api: Any, soundhive_services: Any
) -> None:
    """A delta finding no entry (or one left by an older version, a plain string) creates or
    touches nothing; the next read loads and caches the database's counts."""
    owner, _ = user(api, "cold-owner")
    fan, _ = user(api, "cold-fan")
    tid = track_of(api, soundhive_services, owner)["id"]
    cache = redis.Redis.from_url(soundhive_services.redis_url)
    key = f"sh:track:{tid}"

    change_cached(cache, key)
    assert api.post(f"{V1}/tracks/{tid}/like", headers=fan).json()["like_count"] == 1
    assert not cache.exists(key)
    assert api.get(f"{V1}/tracks/{tid}").json()["like_count"] == 1
    assert track_entry(soundhive_services, tid)[b"like"] == b"1"

    change_cached(
        cache, key, json.dumps({"id": tid, "title": "old format", "like_count": 7}), ex=300
    )
    comment(api, tid, fan)
    assert cache.type(key) == b"string"  # left alone by the delta
    body = api.get(f"{V1}/tracks/{tid}").json()
    assert (body["title"], body["like_count"], body["comment_count"]) == ("Night walk", 1, 1)
    assert cache.type(key) == b"hash"  # replaced by the reader
    assert counters(soundhive_services, tid) == (1, 1, 1, 1)


async def test_likes_comments_and_plays_at_once_keep_cached_counts_exact(
    api: Any, soundhive_services: Any
) -> None:
    owner, _ = user(api, "mix-owner")
    tid = track_of(api, soundhive_services, owner)["id"]
    people = [user(api, f"mix-{i}")[0] for i in range(15)]
    mark_cached_title(soundhive_services, tid, "still cached")
    base = f"{V1}/tracks/{tid}"
    async with httpx.AsyncClient(base_url=str(api.base_url), timeout=60) as client:
        calls = [client.post(f"{base}/like", headers=h) for h in people]
        calls += [client.post(f"{base}/comments", json={"body": "hi"}, headers=h) for h in people]
        calls += [client.post(f"{base}/play", headers=h) for h in people]
        calls += [client.get(base) for _ in range(15)]
        responses = await asyncio.gather(*calls)
        assert {r.status_code for r in responses} <= {200, 201}, [r.text for r in responses]
        calls = [client.delete(f"{base}/like", headers=h) for h in people[:6]]
        calls += [client.get(base) for _ in range(6)]
        assert {r.status_code for r in await asyncio.gather(*calls)} == {200}
    body = api.get(base).json()
    assert body["title"] == "still cached"
    assert counters(soundhive_services, tid) == (9, 9, 15, 15)
    plays = count(soundhive_services, "SELECT play_count FROM tracks WHERE id = %s", tid)
    assert (body["like_count"], body["comment_count"], body["play_count"]) == (9, 15, plays)
    assert plays == 15


def test_likes_and_comments_work_and_count_without_redis(
    api: Any, soundhive_services: Any, make_settings: Any
) -> None:
    from core.app import create_app
    from core.testing.live import LiveServer

    owner, _ = user(api, "nored-like-owner")
    fan, _ = user(api, "nored-like-fan")
    tid = track_of(api, soundhive_services, owner)["id"]
    private = track_of(api, soundhive_services, owner, visibility="private")["id"]
    with (
        LiveServer(create_app(make_settings(redis_url="redis://127.0.0.1:1/0"))) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        like = f"{V1}/tracks/{tid}/like"
        assert client.post(like, headers=fan).json() == {"liked": True, "like_count": 1}
        assert client.post(like, headers=owner).json() == {"liked": True, "like_count": 2}
        made = client.post(f"{V1}/tracks/{tid}/comments", json={"body": "hi"}, headers=fan)
        assert made.status_code == 201, made.text
        assert client.delete(like, headers=owner).json() == {"liked": False, "like_count": 1}
        body = client.get(f"{V1}/tracks/{tid}").json()
        assert (body["like_count"], body["comment_count"]) == (1, 1)
        problem(client.post(f"{V1}/tracks/{private}/like", headers=fan), 404, "TRACK_NOT_FOUND")
    assert counters(soundhive_services, tid) == (1, 1, 1, 1)


# -- visibility and ownership of every mutating endpoint --------------------------------------
def test_cannot_like_what_you_cannot_see(api: Any, soundhive_services: Any) -> None:
    owner, _ = user(api, "hidden-owner")
    other, _ = user(api, "hidden-other")
    private = track_of(api, soundhive_services, owner, visibility="private")
    processing = upload(api, owner, wav_bytes(seconds=1), content_type="audio/wav").json()
    for track_id in (private["id"], processing["id"], MISSING):
        problem(api.post(f"{V1}/tracks/{track_id}/like", headers=other), 404, "TRACK_NOT_FOUND")
        problem(api.get(f"{V1}/tracks/{track_id}/like", headers=other), 404, "TRACK_NOT_FOUND")
    assert count(soundhive_services, "SELECT count(*) FROM likes") == 0
    assert api.post(f"{V1}/tracks/not-a-uuid/like", headers=other).status_code == 422
    problem(api.post(f"{V1}/tracks/{private['id']}/like"), 401, "UNAUTHORIZED")


def test_unlike_touches_only_the_callers_own_like(api: Any, soundhive_services: Any) -> None:
    owner, _ = user(api, "unlike-owner")
    fan, _ = user(api, "unlike-fan")
    other, _ = user(api, "unlike-other")
    track = track_of(api, soundhive_services, owner)
    api.post(f"{V1}/tracks/{track['id']}/like", headers=fan)
    response = api.delete(f"{V1}/tracks/{track['id']}/like", headers=other)
    assert response.json() == {"liked": False, "like_count": 1}
    assert counters(soundhive_services, track["id"])[:2] == (1, 1)
    # once private, the fan cannot even unlike it any more (it is 404 to them)
    patch = {"visibility": "private"}
    assert api.patch(f"{V1}/tracks/{track['id']}", json=patch, headers=owner).is_success
    problem(api.delete(f"{V1}/tracks/{track['id']}/like", headers=fan), 404, "TRACK_NOT_FOUND")
    assert counters(soundhive_services, track["id"])[:2] == (1, 1)
    assert events(soundhive_services, "track.unliked") == []


def test_cannot_comment_on_what_you_cannot_see(api: Any, soundhive_services: Any) -> None:
    owner, _ = user(api, "cm-hidden-owner")
    other, _ = user(api, "cm-hidden-other")
    private = track_of(api, soundhive_services, owner, visibility="private")
    for track_id in (private["id"], MISSING):
        url = f"{V1}/tracks/{track_id}/comments"
        problem(api.post(url, json={"body": "hi"}, headers=other), 404, "TRACK_NOT_FOUND")
        problem(api.get(url, headers=other), 404, "TRACK_NOT_FOUND")
    assert comment(api, private["id"], owner)["body"] == "nice"  # the owner may
    assert counters(soundhive_services, private["id"])[2:] == (1, 1)
    problem(
        api.post(f"{V1}/tracks/{private['id']}/comments", json={"body": "x"}), 401, "UNAUTHORIZED"
    )


def test_only_the_author_edits_a_comment(api: Any, soundhive_services: Any) -> None:
    owner, _ = user(api, "edit-owner")
    author, _ = user(api, "edit-author")
    other, _ = user(api, "edit-other")
    track = track_of(api, soundhive_services, owner)
    made = comment(api, track["id"], author, body="first try")
    url = f"{V1}/comments/{made['id']}"
    for intruder in (other, owner, api.auth("edit-mod", "moderator")):
        problem(api.patch(url, json={"body": "pwned"}, headers=intruder), 403, "NOT_COMMENT_AUTHOR")
    problem(
        api.patch(f"{V1}/comments/{MISSING}", json={"body": "x"}, headers=author),
        404,
        "COMMENT_NOT_FOUND",
    )
    problem(api.patch(url, json={"body": "x"}), 401, "UNAUTHORIZED")

    edited = api.patch(url, json={"body": "  second try \n"}, headers=author)
    assert edited.status_code == 200, edited.text
    body = edited.json()
    assert body["body"] == "second try" and body["created_at"] == made["created_at"]
    assert (
        ts(body["updated_at"]) > ts(made["updated_at"])
        and body["author"]["id"] == made["author_id"]
    )
    for bad in ({"body": ""}, {"body": "x" * 2001}, {"body": "a\x00b"}, {"position_ms": 1}, {}):
        problem(api.patch(url, json=bad, headers=author), 422, "VALIDATION_FAILED")
    assert api.get(url).json()["body"] == "second try"
    assert [e["comment_id"] for e in events(soundhive_services, "comment.updated")] == [made["id"]]

    # once the track is private, the author no longer sees the comment: 404
    patch = {"visibility": "private"}
    assert api.patch(f"{V1}/tracks/{track['id']}", json=patch, headers=owner).is_success
    problem(api.patch(url, json={"body": "x"}, headers=author), 404, "COMMENT_NOT_FOUND")
    problem(api.get(url, headers=other), 404, "COMMENT_NOT_FOUND")


def test_author_or_track_owner_deletes_and_counts_follow(api: Any, soundhive_services: Any) -> None:
    owner, owner_id = user(api, "del-owner")
    author, author_id = user(api, "del-author")
    other, _ = user(api, "del-other")
    track = track_of(api, soundhive_services, owner)
    parent = comment(api, track["id"], author, body="parent")
    replies = [
        comment(api, track["id"], other, body=f"r{i}", parent_id=parent["id"]) for i in range(2)
    ]
    lone = comment(api, track["id"], author, body="lone")
    assert counters(soundhive_services, track["id"])[2:] == (4, 4)

    for intruder in (other, api.auth("del-mod", "moderator")):
        response = api.delete(f"{V1}/comments/{lone['id']}", headers=intruder)
        problem(response, 403, "NOT_COMMENT_AUTHOR")
    problem(api.delete(f"{V1}/comments/{lone['id']}"), 401, "UNAUTHORIZED")
    problem(api.delete(f"{V1}/comments/{MISSING}", headers=owner), 404, "COMMENT_NOT_FOUND")
    # the reply's author deletes their reply; the author (not the replier) cannot delete others'
    problem(
        api.delete(f"{V1}/comments/{replies[0]['id']}", headers=author), 403, "NOT_COMMENT_AUTHOR"
    )
    assert api.delete(f"{V1}/comments/{replies[0]['id']}", headers=other).status_code == 204
    assert counters(soundhive_services, track["id"])[2:] == (3, 3)
    # the track owner deletes a parent: its replies go with it, the count drops by exactly 2
    assert api.delete(f"{V1}/comments/{parent['id']}", headers=owner).status_code == 204
    assert counters(soundhive_services, track["id"])[2:] == (1, 1)
    assert api.get(f"{V1}/tracks/{track['id']}").json()["comment_count"] == 1
    problem(api.delete(f"{V1}/comments/{parent['id']}", headers=owner), 404, "COMMENT_NOT_FOUND")
    problem(api.get(f"{V1}/comments/{replies[1]['id']}"), 404, "COMMENT_NOT_FOUND")
    assert api.delete(f"{V1}/comments/{lone['id']}", headers=author).status_code == 204
    assert counters(soundhive_services, track["id"])[2:] == (0, 0)
    deleted = events(soundhive_services, "comment.deleted")
    assert [(e["comment_id"], e["removed"]) for e in deleted] == [
        (replies[0]["id"], 1),
        (parent["id"], 2),
        (lone["id"], 1),
    ]
    assert deleted[1]["actor_id"] == owner_id and deleted[1]["author_id"] == author_id


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/tracks/{track}/like", None),
        ("DELETE", "/tracks/{track}/like", None),
        ("POST", "/tracks/{track}/comments", {"body": "let me"}),
        ("PATCH", "/comments/{comment}", {"body": "let me"}),
        ("DELETE", "/comments/{comment}", None),
    ],
)
async def test_banned_account_gets_403_on_every_write(
    api: Any, soundhive_services: Any, kernel: Any, method: str, path: str, body: Any
) -> None:
    owner, _ = user(api, "ban-owner")
    rogue, rogue_id = user(api, "ban-rogue")
    track = track_of(api, soundhive_services, owner)
    api.post(f"{V1}/tracks/{track['id']}/like", headers=rogue)
    own = comment(api, track["id"], rogue, body="before the ban")
    before = counters(soundhive_services, track["id"])
    await ban(kernel, rogue_id)
    url = V1 + path.format(track=track["id"], comment=own["id"])
    problem(api.request(method, url, json=body, headers=rogue), 403, "ACCOUNT_BANNED")
    assert counters(soundhive_services, track["id"]) == before
    assert sql(soundhive_services, "SELECT body FROM comments") == [("before the ban",)]
    # reading stays allowed; their comment is hidden from others but not from themselves
    assert api.get(f"{V1}/tracks/{track['id']}/like", headers=rogue).json()["liked"] is True
    assert api.get(f"{V1}/tracks/{track['id']}/comments").json()["items"] == []
    mine = api.get(f"{V1}/tracks/{track['id']}/comments", headers=rogue).json()["items"]
    assert [c["id"] for c in mine] == [own["id"]]


# -- comments -------------------------------------------------------------------------------
def test_comment_fields_validation_and_event(api: Any, soundhive_services: Any) -> None:
    owner, owner_id = user(api, "cm-owner")
    author, author_id = user(api, "cm-author")
    track = track_of(api, soundhive_services, owner)  # duration_ms 180000, detail cached
    made = comment(api, track["id"], author, body="  drop at 1:01 🔥\r\nwow  ", position_ms=61000)
    assert set(made) == COMMENT_FIELDS
    assert made["body"] == "drop at 1:01 🔥\nwow" and made["position_ms"] == 61000
    assert (made["track_id"], made["author_id"], made["parent_id"]) == (
        track["id"],
        author_id,
        None,
    )
    assert made["reply_count"] == 0 and made["hidden"] is False
    assert made["author"]["id"] == author_id and "email" not in made["author"]
    assert RFC3339_UTC.match(made["created_at"]) and made["created_at"] == made["updated_at"]
    assert api.get(f"{V1}/comments/{made['id']}").json() == made
    assert api.get(f"{V1}/tracks/{track['id']}").json()["comment_count"] == 1
    assert events(soundhive_services, "comment.created") == [
        {
            "comment_id": made["id"],
            "track_id": track["id"],
            "author_id": author_id,
            "owner_id": owner_id,
            "parent_id": None,
            "parent_author_id": None,
        }
    ]
    url = f"{V1}/tracks/{track['id']}/comments"
    assert (
        api.post(url, json={"body": "x" * 2000, "position_ms": 0}, headers=author).status_code
        == 201
    )
    assert (
        api.post(url, json={"body": "end", "position_ms": 180000}, headers=author).status_code
        == 201
    )
    problem(
        api.post(url, json={"body": "late", "position_ms": 180001}, headers=author),
        422,
        "INVALID_POSITION",
    )
    for bad in (
        {"body": "   "},
        {"body": "x" * 2001},
        {"body": "bell\x07"},
        {"body": "spoof\u202e"},
        {"body": "neg", "position_ms": -1},
        {"body": "big", "position_ms": 2**31},
        {"body": "x", "author_id": owner_id},
        {"body": "x", "parent_id": "nope"},
        {},
    ):
        body = problem(api.post(url, json=bad, headers=author), 422, "VALIDATION_FAILED")
        assert body["errors"] and body["errors"][0]["loc"][0] == "body"
    assert counters(soundhive_services, track["id"])[2:] == (3, 3)
    # a track without a duration (still processing) takes any position ≥ 0 from its owner
    processing = upload(api, owner, wav_bytes(seconds=1), content_type="audio/wav").json()
    made = comment(api, processing["id"], owner, position_ms=10**9)
    assert made["position_ms"] == 10**9


def test_replies_are_one_level_deep(api: Any, soundhive_services: Any) -> None:
    owner, owner_id = user(api, "rp-owner")
    alice, alice_id = user(api, "rp-alice")
    bob, bob_id = user(api, "rp-bob")
    track = track_of(api, soundhive_services, owner)
    elsewhere = track_of(api, soundhive_services, owner, title="elsewhere")
    parent = comment(api, track["id"], alice, body="parent", position_ms=5000)
    foreign = comment(api, elsewhere["id"], alice, body="other track")
    replies = [
        comment(api, track["id"], bob, body=f"reply {i}", parent_id=parent["id"]) for i in range(3)
    ]
    assert replies[0]["parent_id"] == parent["id"] and replies[0]["reply_count"] == 0
    created = events(soundhive_services, "comment.created")[-1]
    assert (created["parent_id"], created["parent_author_id"]) == (parent["id"], alice_id)
    assert created["owner_id"] == owner_id and created["author_id"] == bob_id

    url = f"{V1}/tracks/{track['id']}/comments"
    for parent_id in (replies[0]["id"], foreign["id"], MISSING):
        response = api.post(url, json={"body": "deep", "parent_id": parent_id}, headers=alice)
        problem(response, 422, "INVALID_PARENT")
    top = api.get(url).json()["items"]
    assert [(c["id"], c["reply_count"]) for c in top] == [(parent["id"], 3)]
    listed = walk(api, url, parent_id=parent["id"], limit=2)
    assert [c["id"] for c in listed] == [r["id"] for r in replies]  # oldest first
    problem(api.get(url, params={"parent_id": replies[0]["id"]}), 404, "COMMENT_NOT_FOUND")
    problem(api.get(url, params={"parent_id": foreign["id"]}), 404, "COMMENT_NOT_FOUND")
    assert counters(soundhive_services, track["id"])[2:] == (4, 4)


def test_comment_lists_paginate_newest_first_or_by_position(
    api: Any, soundhive_services: Any
) -> None:
    owner, _ = user(api, "pg-owner")
    fan, _ = user(api, "pg-fan")
    track = track_of(api, soundhive_services, owner)
    positions = [9000, None, 1000, 5000, None, 1000, 0]
    made = [
        comment(api, track["id"], fan, body=f"c{i}", position_ms=p) for i, p in enumerate(positions)
    ]
    url = f"{V1}/tracks/{track['id']}/comments"
    newest = walk(api, url, limit=3)
    assert [c["id"] for c in newest] == [c["id"] for c in reversed(made)]
    by_position = walk(api, url, sort="position", limit=2)
    assert [c["body"] for c in by_position] == ["c6", "c2", "c5", "c3", "c0", "c1", "c4"]
    first = api.get(url, params={"limit": 2}).json()
    problem(
        api.get(url, params={"sort": "position", "cursor": first["next_cursor"]}),
        422,
        "INVALID_CURSOR",
    )
    problem(api.get(url, params={"cursor": "garbage"}), 422, "INVALID_CURSOR")
    problem(api.get(url, params={"sort": "random"}), 422, "VALIDATION_FAILED")
    problem(api.get(url, params={"limit": 101}), 422, "VALIDATION_FAILED")


async def test_hidden_and_banned_authors_comments_are_left_out(
    api: Any, soundhive_services: Any, kernel: Any
) -> None:
    from skills.interaction_like_comment import api as comments_api

    owner, _ = user(api, "mod-owner")
    writer, _ = user(api, "mod-writer")
    troll, troll_id = user(api, "mod-troll")
    moderator = api.auth("mod-mod", "moderator")
    track = track_of(api, soundhive_services, owner)
    url = f"{V1}/tracks/{track['id']}/comments"
    kept = comment(api, track["id"], writer, body="kept")
    hidden = comment(api, track["id"], writer, body="hidden")
    comment(api, track["id"], troll, body="troll", parent_id=kept["id"])
    comment(api, track["id"], writer, body="ok reply", parent_id=kept["id"])

    async with kernel.db.session() as session, session.begin():
        assert await comments_api.set_comment_hidden(session, uuid.UUID(hidden["id"]), True)
        assert not await comments_api.set_comment_hidden(session, uuid.UUID(hidden["id"]), True)
        with pytest.raises(Exception, match="No comment"):
            await comments_api.set_comment_hidden(session, uuid.uuid4(), True)
    async with kernel.db.session() as session:
        found = await comments_api.get_comment(session, uuid.UUID(hidden["id"]))
        assert found is not None and found.hidden is True and found.body == "hidden"
        assert await comments_api.get_comment(session, uuid.uuid4()) is None
    await ban(kernel, troll_id)

    def bodies(headers: dict[str, str] | None) -> list[tuple[str, int]]:
        return [(c["body"], c["reply_count"]) for c in walk(api, url, headers)]

    assert bodies(None) == [("kept", 1)]
    assert bodies(owner) == [("kept", 1)]  # track owners do not see hidden comments
    assert bodies(writer) == [("hidden", 0), ("kept", 1)]
    assert bodies(moderator) == [("hidden", 0), ("kept", 2)]
    assert [c["body"] for c in walk(api, url, troll, parent_id=kept["id"])] == ["troll", "ok reply"]
    problem(api.get(f"{V1}/comments/{hidden['id']}", headers=owner), 404, "COMMENT_NOT_FOUND")
    assert api.get(f"{V1}/comments/{hidden['id']}", headers=writer).json()["hidden"] is True
    reply = api.post(url, json={"body": "hi", "parent_id": hidden["id"]}, headers=owner)
    problem(reply, 422, "INVALID_PARENT")
    problem(api.delete(f"{V1}/comments/{hidden['id']}", headers=owner), 404, "COMMENT_NOT_FOUND")
    assert counters(soundhive_services, track["id"])[2:] == (4, 4)  # counts count rows
    assert [e["comment_id"] for e in events(soundhive_services, "comment.hidden")] == [hidden["id"]]

    async with kernel.db.session() as session:
        assert (
            await comments_api.remove_comment(kernel, session, uuid.UUID(kept["id"]), actor_id=None)
            == 3
        )
        assert (
            await comments_api.remove_comment(kernel, session, uuid.UUID(kept["id"]), actor_id=None)
            == 0
        )
    assert counters(soundhive_services, track["id"])[2:] == (1, 1)
    assert api.get(f"{V1}/tracks/{track['id']}").json()["comment_count"] == 1


async def test_comment_count_stays_exact_under_concurrency(
    api: Any, soundhive_services: Any
) -> None:
    owner, _ = user(api, "cc-owner")
    track = track_of(api, soundhive_services, owner)
    url = f"{V1}/tracks/{track['id']}/comments"
    writers = [user(api, f"cc-{i}")[0] for i in range(20)]
    async with httpx.AsyncClient(base_url=str(api.base_url), timeout=60) as client:
        made = await asyncio.gather(
            *(client.post(url, json={"body": "hey"}, headers=h) for h in writers)
        )
        assert [r.status_code for r in made] == [201] * 20
        assert counters(soundhive_services, track["id"])[2:] == (20, 20)

        # Replies still in flight when their parent's deletion starts: the test holds the
        # track row so the replies stop at their counter update, the deletion queues behind
        # them on the parent, and must then remove and count every one of them.
        parent = made[0].json()
        body = {"body": "re", "parent_id": parent["id"]}
        with psycopg.connect(plain_url(soundhive_services.database_url)) as blocker:
            blocker.execute("SELECT 1 FROM tracks WHERE id = %s FOR NO KEY UPDATE", (track["id"],))
            replies = [
                asyncio.create_task(client.post(url, json=body, headers=h)) for h in writers[:10]
            ]
            await waiting_on_locks(soundhive_services, 10)
            deletion = asyncio.create_task(
                client.delete(f"{V1}/comments/{parent['id']}", headers=owner)
            )
            await waiting_on_locks(soundhive_services, 11)
            blocker.commit()
        assert [r.status_code for r in await asyncio.gather(*replies)] == [201] * 10
        assert (await deletion).status_code == 204
        assert events(soundhive_services, "comment.deleted")[-1]["removed"] == 11
        assert counters(soundhive_services, track["id"])[2:] == (19, 19)

        # Replies racing the deletion without help: each lands before it (and is removed and
        # counted with it) or finds no parent (422 INVALID_PARENT); the count stays exact.
        for round_, delay in enumerate((0.0, 0.02, 0.04), start=1):
            parent = made[round_].json()
            body = {"body": "re", "parent_id": parent["id"]}

            async def reply(wait: float, headers: dict[str, str], body: Any = body) -> Any:
                await asyncio.sleep(wait)
                return await client.post(url, json=body, headers=headers)

            async def delete(parent_id: str = parent["id"], wait: float = delay) -> Any:
                await asyncio.sleep(wait)
                return await client.delete(f"{V1}/comments/{parent_id}", headers=owner)

            results = await asyncio.gather(
                delete(), *(reply(i * 0.006, h) for i, h in enumerate(writers))
            )
            assert results[0].status_code == 204, results[0].text
            assert {r.status_code for r in results[1:]} <= {201, 422}
            refused = [r for r in results[1:] if r.status_code == 422]
            assert all(r.json()["code"] == "INVALID_PARENT" for r in refused)
            left = 19 - round_
            assert counters(soundhive_services, track["id"])[2:] == (left, left)
    removed = sum(e["removed"] for e in events(soundhive_services, "comment.deleted"))
    assert len(events(soundhive_services, "comment.created")) - removed == 16


async def waiting_on_locks(services: Any, n: int) -> None:
    """Wait (up to ~10 s) until ``n`` sessions of the test database wait on a lock."""
    query = (
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    for _ in range(500):
        if count(services, query) >= n:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"fewer than {n} requests ever waited on a lock")


def test_deleting_a_track_removes_its_likes_and_comments(api: Any, soundhive_services: Any) -> None:
    owner, _ = user(api, "cascade-owner")
    fan, _ = user(api, "cascade-fan")
    track = track_of(api, soundhive_services, owner)
    keep = track_of(api, soundhive_services, owner, title="keep")
    for target in (track, keep):
        api.post(f"{V1}/tracks/{target['id']}/like", headers=fan)
        parent = comment(api, target["id"], fan)
        comment(api, target["id"], owner, parent_id=parent["id"])
    assert api.delete(f"{V1}/tracks/{track['id']}", headers=owner).status_code == 204
    assert sql(soundhive_services, "SELECT DISTINCT track_id::text FROM likes") == [(keep["id"],)]
    assert sql(soundhive_services, "SELECT DISTINCT track_id::text FROM comments") == [
        (keep["id"],)
    ]
    assert count(soundhive_services, "SELECT count(*) FROM comments") == 2
    assert [t["id"] for t in walk(api, f"{V1}/users/me/likes", fan)] == [keep["id"]]
    assert counters(soundhive_services, keep["id"]) == (1, 1, 2, 2)


def test_anonymous_readers_and_openapi(api: Any, soundhive_services: Any) -> None:
    owner, _ = user(api, "anon-owner")
    track = track_of(api, soundhive_services, owner, visibility="unlisted")
    made = comment(api, track["id"], owner, body="liner notes", position_ms=1)
    api.post(f"{V1}/tracks/{track['id']}/like", headers=owner)
    assert api.get(f"{V1}/tracks/{track['id']}/comments").json()["items"][0]["id"] == made["id"]
    assert len(api.get(f"{V1}/tracks/{track['id']}/likes").json()["items"]) == 1
    assert api.get(f"{V1}/comments/{made['id']}").json()["body"] == "liner notes"
    problem(api.get(f"{V1}/comments/{MISSING}"), 404, "COMMENT_NOT_FOUND")
    spec = api.get("/openapi.json").json()
    for path in (
        "/api/v1/tracks/{track_id}/like",
        "/api/v1/tracks/{track_id}/likes",
        "/api/v1/users/me/likes",
        "/api/v1/tracks/{track_id}/comments",
        "/api/v1/comments/{comment_id}",
    ):
        for operation in spec["paths"][path].values():
            assert operation["tags"] == ["interaction-like-comment"]
