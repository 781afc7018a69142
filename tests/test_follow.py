"""user-follow-system over real HTTP, on the real PostgreSQL and Redis of the test session.

Bans and the ban-triggered recount go through the public modules on a kernel of the test's
own event loop, exactly as admin-moderation and the worker would call them.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import psycopg
import pytest

from core.testing.services import plain_url

PROBLEM = "application/problem+json"
API = "/api/v1"
ME = f"{API}/users/me"
PROFILE_FIELDS = {
    "id",
    "handle",
    "display_name",
    "bio",
    "avatar_url",
    "followers_count",
    "following_count",
    "tracks_count",
    "created_at",
    "updated_at",
}


# -- helpers --------------------------------------------------------------------------------
@pytest.fixture
def sql(soundhive_services: Any) -> Callable[..., list[tuple[Any, ...]]]:
    """Run one SQL statement on the test database (autocommit) and return its rows."""
    url = plain_url(soundhive_services.database_url)

    def run(query: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(url, autocommit=True) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    return run


@pytest.fixture
async def kernel(make_settings: Callable[..., Any], api: Any) -> AsyncIterator[Any]:
    """A kernel on this test's event loop (the live server's engine belongs to its own loop)."""
    from core.kernel import Kernel

    k = Kernel(make_settings())
    yield k
    await k.aclose()


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["code"] == code and body["status"] == status
    assert body["type"].startswith("urn:soundhive:problem:") and body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]
    return body


def me(api: Any, sub: str) -> str:
    """Provision ``sub``'s profile and return its id."""
    response = api.get(ME, headers=api.auth(sub))
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def follow(client: Any, api: Any, sub: str, target: str, method: str = "POST") -> httpx.Response:
    response: httpx.Response = client.request(
        method, f"{API}/users/{target}/follow", headers=api.auth(sub)
    )
    return response


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert set(body) == {"following", "followed_by", "followers_count"}
    return body


def profile(api: Any, user_id: str) -> dict[str, Any]:
    response = api.get(f"{API}/users/{user_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def counts(api: Any, user_id: str) -> tuple[int, int]:
    body = profile(api, user_id)
    return body["followers_count"], body["following_count"]


def listing(api: Any, user_id: str, which: str, **params: Any) -> dict[str, Any]:
    headers = params.pop("headers", None)
    response = api.get(f"{API}/users/{user_id}/{which}", params=params, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"items", "next_cursor"}
    for item in body["items"]:
        assert set(item) == PROFILE_FIELDS  # user-profile's ProfileRead, nothing private
    return body


def ids_of(page: dict[str, Any]) -> list[str]:
    return [item["id"] for item in page["items"]]


def walk(api: Any, user_id: str, which: str, limit: int) -> list[list[str]]:
    """Every page of a list, following next_cursor to the end."""
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        page = listing(api, user_id, which, **params)
        pages.append(ids_of(page))
        cursor = page["next_cursor"]
        if cursor is None:
            return pages
        assert len(page["items"]) == limit  # only the last page may be short


def edge_rows(sql: Any, *, follower: str | None = None, following: str | None = None) -> int:
    query, params = "SELECT count(*) FROM follows WHERE true", list[Any]()
    if follower:
        query, params = query + " AND follower_id = %s", [*params, follower]
    if following:
        query, params = query + " AND following_id = %s", [*params, following]
    return int(sql(query, *params)[0][0])


def stored_counts(sql: Any, user_id: str) -> tuple[int, int]:
    row = sql("SELECT followers_count, following_count FROM user_profiles WHERE id = %s", user_id)
    return int(row[0][0]), int(row[0][1])


def events(sql: Any, event_type: str) -> list[dict[str, Any]]:
    rows = sql("SELECT payload FROM core_outbox WHERE type = %s ORDER BY occurred_at", event_type)
    return [row[0] for row in rows]


def in_parallel(calls: list[Callable[[httpx.Client], httpx.Response]], url: str) -> list[Any]:
    """Run each call on its own thread with its own connection, released together."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int, call: Callable[[httpx.Client], httpx.Response]) -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            barrier.wait()
            response = call(client)
            results[index] = (response.status_code, response.json())

    threads = [threading.Thread(target=run, args=item) for item in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


async def set_banned(kernel: Any, user_id: str, banned: bool) -> None:
    from skills.user_profile import api as profiles

    async with kernel.db.session() as session, profiles.transaction(kernel, session):
        assert await profiles.set_banned(session, uuid.UUID(user_id), banned) is True


async def run_recount(kernel: Any, user_id: str, event_type: str) -> None:
    """Deliver the event to the skill's actor the way the worker would (kwargs of the event)."""
    from skills.user_follow_system.tasks import recount_neighbours

    await recount_neighbours(
        kernel,
        id=str(uuid.uuid4()),
        type=event_type,
        payload={"user_id": user_id},
        occurred_at="2026-01-01T00:00:00+00:00",
    )


# -- follow / unfollow ----------------------------------------------------------------------
def test_follow_and_unfollow_are_idempotent_with_exact_counts_and_events(
    api: Any, sql: Any
) -> None:
    alice, bob = me(api, "alice"), me(api, "bob")
    assert counts(api, bob) == (0, 0)  # warms the profile cache the follow must invalidate

    first = ok(follow(api, api, "alice", bob))
    assert first == {"following": True, "followed_by": False, "followers_count": 1}
    assert ok(follow(api, api, "alice", bob)) == first  # a repeat is a no-op, same answer
    assert edge_rows(sql) == 1
    assert counts(api, bob) == (1, 0) and counts(api, alice) == (0, 1)
    assert stored_counts(sql, bob) == (1, 0) and stored_counts(sql, alice) == (0, 1)
    assert events(sql, "user.followed") == [{"follower_id": alice, "following_id": bob}]

    # Bob follows back: both sides see it, from either end.
    back = ok(follow(api, api, "bob", alice))
    assert back == {"following": True, "followed_by": True, "followers_count": 1}
    state = api.get(f"{API}/users/{bob}/follow", headers=api.auth("alice"))
    assert ok(state) == {"following": True, "followed_by": True, "followers_count": 1}

    gone = ok(follow(api, api, "alice", bob, "DELETE"))
    assert gone == {"following": False, "followed_by": True, "followers_count": 0}
    assert ok(follow(api, api, "alice", bob, "DELETE")) == gone
    assert edge_rows(sql, follower=alice) == 0
    assert counts(api, bob) == (0, 1) and counts(api, alice) == (1, 0)
    assert events(sql, "user.unfollowed") == [{"follower_id": alice, "following_id": bob}]
    assert len(events(sql, "user.followed")) == 2  # alice→bob and bob→alice, no repeats

    # Unfollowing someone never followed is a no-op too, with no event.
    carol = me(api, "carol")
    never = ok(follow(api, api, "carol", bob, "DELETE"))
    assert never == {"following": False, "followed_by": False, "followers_count": 0}
    assert counts(api, carol) == (0, 0)
    assert len(events(sql, "user.unfollowed")) == 1


def test_following_yourself_is_422(api: Any, sql: Any) -> None:
    dan = me(api, "dan")
    for method in ("POST", "DELETE"):
        body = problem(follow(api, api, "dan", dan, method), 422, "CANNOT_FOLLOW_SELF")
        assert "yourself" in body["detail"]
    assert edge_rows(sql) == 0 and counts(api, dan) == (0, 0)
    assert events(sql, "user.followed") == []
    state = api.get(f"{API}/users/{dan}/follow", headers=api.auth("dan"))
    assert ok(state) == {"following": False, "followed_by": False, "followers_count": 0}
    # The database refuses it too, whatever the code path.
    with pytest.raises(psycopg.errors.CheckViolation):
        sql(
            "INSERT INTO follows (id, follower_id, following_id) VALUES (%s, %s, %s)",
            uuid.uuid4(),
            dan,
            dan,
        )


def test_unknown_or_deleted_target_is_404(api: Any, sql: Any) -> None:
    me(api, "erin")
    unknown = str(uuid.uuid4())
    for method in ("POST", "DELETE", "GET"):
        body = problem(follow(api, api, "erin", unknown, method), 404, "USER_NOT_FOUND")
        assert unknown in body["detail"]
    for which in ("followers", "following"):
        problem(api.get(f"{API}/users/{unknown}/{which}"), 404, "USER_NOT_FOUND")

    frank = me(api, "frank")
    assert api.delete(ME, headers=api.auth("frank")).status_code == 204
    for method in ("POST", "DELETE", "GET"):
        problem(follow(api, api, "erin", frank, method), 404, "USER_NOT_FOUND")
    for which in ("followers", "following"):
        problem(api.get(f"{API}/users/{frank}/{which}"), 404, "USER_NOT_FOUND")
    assert edge_rows(sql) == 0

    invalid = api.post(f"{API}/users/not-a-uuid/follow", headers=api.auth("erin"))
    body = problem(invalid, 422, "VALIDATION_FAILED")
    assert body["errors"][0]["loc"] == ["path", "user_id"]


def test_anonymous_writes_are_401_but_lists_are_public(api: Any, sql: Any) -> None:
    gus, hal = me(api, "gus"), me(api, "hal")
    ok(follow(api, api, "gus", hal))
    for method in ("POST", "DELETE", "GET"):
        body = problem(api.request(method, f"{API}/users/{hal}/follow"), 401, "UNAUTHORIZED")
        assert body["instance"] == f"{API}/users/{hal}/follow"
        bad = {"Authorization": "Bearer not-a-jwt"}
        problem(api.request(method, f"{API}/users/{hal}/follow", headers=bad), 401, "UNAUTHORIZED")
    assert edge_rows(sql) == 1 and counts(api, hal) == (1, 0)
    assert ids_of(listing(api, hal, "followers")) == [gus]
    assert ids_of(listing(api, gus, "following")) == [hal]


async def test_banned_caller_gets_403_on_every_write(api: Any, kernel: Any, sql: Any) -> None:
    ivan, jo, kai = me(api, "ivan"), me(api, "jo"), me(api, "kai")
    ok(follow(api, api, "ivan", jo))
    await set_banned(kernel, ivan, True)

    for target, method in ((jo, "DELETE"), (jo, "POST"), (kai, "POST"), (kai, "DELETE")):
        body = problem(follow(api, api, "ivan", target, method), 403, "ACCOUNT_BANNED")
        assert "banned" in body["detail"]
    assert edge_rows(sql, follower=ivan) == 1  # nothing changed, nothing removed
    assert stored_counts(sql, ivan) == (0, 1) and stored_counts(sql, kai) == (0, 0)
    assert len(events(sql, "user.followed")) == 1 and events(sql, "user.unfollowed") == []
    # Reading is still allowed for a banned account.
    state = api.get(f"{API}/users/{jo}/follow", headers=api.auth("ivan"))
    assert ok(state)["following"] is True

    # Others cannot follow the banned account either: it is 404 to them.
    problem(follow(api, api, "kai", ivan), 404, "USER_NOT_FOUND")
    problem(follow(api, api, "kai", ivan, "GET"), 404, "USER_NOT_FOUND")

    await set_banned(kernel, ivan, False)
    assert ok(follow(api, api, "ivan", kai))["following"] is True


def test_deleted_caller_is_refused(api: Any, sql: Any) -> None:
    me(api, "lou")
    max_ = me(api, "max")
    ok(follow(api, api, "lou", max_))
    assert api.delete(ME, headers=api.auth("lou")).status_code == 204
    for method in ("POST", "DELETE", "GET"):
        problem(follow(api, api, "lou", max_, method), 403, "ACCOUNT_DELETED")
    assert edge_rows(sql) == 1  # the edge stays, hidden (see the lists test)


# -- lists ----------------------------------------------------------------------------------
def test_lists_are_newest_first_and_paginate_without_duplicates(api: Any, sql: Any) -> None:
    star = me(api, "star")
    fans = [me(api, f"fan{i:02d}") for i in range(23)]
    for i in range(len(fans)):
        ok(follow(api, api, f"fan{i:02d}", star))
    newest_first = list(reversed(fans))

    pages = walk(api, star, "followers", limit=10)
    assert [len(p) for p in pages] == [10, 10, 3]
    flat = [user for page in pages for user in page]
    assert flat == newest_first and len(set(flat)) == 23
    assert ids_of(listing(api, star, "followers")) == newest_first[:20]  # default limit 20
    assert listing(api, star, "followers", limit=100)["next_cursor"] is None

    # The list shows current profile data, counts included.
    first = listing(api, star, "followers", limit=1)["items"][0]
    assert first["id"] == fans[-1] and first["handle"] and first["following_count"] == 1

    # Keyset cursors are positions, not offsets: a follow arriving between pages and an
    # unfollow of an already-seen row neither duplicate nor skip anyone.
    page1 = listing(api, star, "followers", limit=10)
    me(api, "latecomer")
    ok(follow(api, api, "latecomer", star))
    ok(follow(api, api, "fan22", star, "DELETE"))  # the newest, already on page 1
    page2 = listing(api, star, "followers", limit=10, cursor=page1["next_cursor"])
    page3 = listing(api, star, "followers", limit=10, cursor=page2["next_cursor"])
    assert ids_of(page1) + ids_of(page2) + ids_of(page3) == newest_first
    assert page3["next_cursor"] is None

    # The other direction: whom one user follows, newest first.
    for i in range(7):
        ok(follow(api, api, "fan00", fans[i + 1]))
    following = [user for page in walk(api, fans[0], "following", limit=3) for user in page]
    assert following == [*reversed(fans[1:8]), star]
    assert len(set(following)) == 8 == stored_counts(sql, fans[0])[1]


def test_bad_paging_parameters_are_422(api: Any) -> None:
    nia = me(api, "nia")
    url = f"{API}/users/{nia}/followers"
    body = problem(api.get(url, params={"cursor": "forged"}), 422, "INVALID_CURSOR")
    assert "cursor" in body["detail"]
    for limit in (0, 101, "x"):
        problem(api.get(url, params={"limit": limit}), 422, "VALIDATION_FAILED")
    # A signed cursor whose values are not a position is refused too, not a 500.
    from core.pagination import encode_cursor

    bogus = encode_cursor(["yesterday", "not-a-uuid"])
    problem(api.get(url, params={"cursor": bogus}), 422, "INVALID_CURSOR")


async def test_banned_and_deleted_accounts_leave_lists_and_counts(
    api: Any, kernel: Any, sql: Any
) -> None:
    tom = me(api, "tom")
    ann, ben, cat, dee = (me(api, name) for name in ("ann", "ben", "cat", "dee"))
    for sub in ("ann", "ben", "cat"):
        ok(follow(api, api, sub, tom))
    ok(follow(api, api, "tom", ann))
    ok(follow(api, api, "tom", dee))
    ok(follow(api, api, "ann", dee))
    assert counts(api, tom) == (3, 2)

    await set_banned(kernel, ann, True)
    assert api.delete(ME, headers=api.auth("ben")).status_code == 204
    # Lists filter in SQL right away…
    assert ids_of(listing(api, tom, "followers")) == [cat]
    assert ids_of(listing(api, tom, "following")) == [dee]
    assert ids_of(listing(api, dee, "followers")) == [tom]
    assert listing(api, tom, "followers", limit=1)["next_cursor"] is None  # no ghost pages
    # …and the counters follow once the skill's actor handled user.banned / user.deleted.
    assert [e["user_id"] for e in events(sql, "user.banned")] == [ann]
    await run_recount(kernel, ann, "user.banned")
    await run_recount(kernel, ben, "user.deleted")
    await run_recount(kernel, ben, "user.deleted")  # redelivery changes nothing
    assert counts(api, tom) == (1, 1)  # through the API: the cache was invalidated
    assert stored_counts(sql, dee) == (1, 0)
    assert stored_counts(sql, cat) == (0, 1)
    assert edge_rows(sql) == 6  # edges are kept: an unban brings them back

    # A banned account's own lists: 404 to others, visible to moderators and itself.
    problem(api.get(f"{API}/users/{ann}/following"), 404, "USER_NOT_FOUND")
    problem(api.get(f"{API}/users/{ann}/following", headers=api.auth("cat")), 404, "USER_NOT_FOUND")
    for headers in (api.auth("mod", "moderator"), api.auth("ann")):
        assert ids_of(listing(api, ann, "following", headers=headers)) == [dee, tom]

    await set_banned(kernel, ann, False)
    await run_recount(kernel, ann, "user.unbanned")
    assert ids_of(listing(api, tom, "followers")) == [cat, ann]
    assert counts(api, tom) == (2, 2) and stored_counts(sql, dee) == (2, 0)
    # Visible edges == counters for everyone once the recount ran.
    for user in (tom, ann, cat, dee):
        followers = len(walk(api, user, "followers", limit=100)[0])
        following = len(walk(api, user, "following", limit=100)[0])
        assert counts(api, user) == (followers, following), user


async def test_visibility_events_are_subscribed(api: Any, kernel: Any) -> None:
    from skills.user_follow_system import SKILL

    for event in ("user.banned", "user.unbanned", "user.deleted"):
        assert "user-follow-system.recount_neighbours" in kernel.subscriptions[event]
    info = kernel.skills["user-follow-system"]
    assert info.tables == ["follows"] and SKILL.requires == ("user-profile",)
    assert info.actors == ["user-follow-system.recount_neighbours"]
    # An event without a user id is ignored rather than failing forever.
    from skills.user_follow_system.tasks import recount_neighbours

    await recount_neighbours(kernel, id="x", type="user.banned", payload={}, occurred_at="")


# -- concurrency ----------------------------------------------------------------------------
def test_thirty_users_following_one_user_at_once_count_exactly(
    api: Any, live_server: Any, sql: Any
) -> None:
    idol = me(api, "idol")
    subs = [f"crowd{i:02d}" for i in range(30)]
    crowd = {me(api, sub) for sub in subs}
    assert counts(api, idol) == (0, 0)  # cached, so every commit must invalidate it

    def call(sub: str) -> Callable[[httpx.Client], httpx.Response]:
        return lambda client: follow(client, api, sub, idol)

    results = in_parallel([call(sub) for sub in subs], live_server.url)
    assert [status for status, _ in results] == [200] * 30, results
    assert all(body["following"] is True for _, body in results)
    # Each answer saw its own follow and every one committed before it: a permutation of 1..30.
    assert sorted(body["followers_count"] for _, body in results) == list(range(1, 31))

    assert edge_rows(sql, following=idol) == 30
    assert counts(api, idol) == (30, 0) and stored_counts(sql, idol) == (30, 0)
    assert all(stored_counts(sql, user) == (0, 1) for user in crowd)
    assert set(user for page in walk(api, idol, "followers", limit=7) for user in page) == crowd
    assert len(events(sql, "user.followed")) == 30


def test_one_user_hammering_follow_and_unfollow_keeps_count_equal_to_rows(
    api: Any, live_server: Any, sql: Any
) -> None:
    fan, band = me(api, "hammer"), me(api, "band")
    methods = ["POST", "DELETE"] * 20

    def call(method: str) -> Callable[[httpx.Client], httpx.Response]:
        return lambda client: follow(client, api, "hammer", band, method)

    for _ in range(2):  # two rounds: one may end followed, one not
        results = in_parallel([call(m) for m in methods], live_server.url)
        assert {status for status, _ in results} == {200}, results
        rows = edge_rows(sql, follower=fan, following=band)
        assert rows in (0, 1)
        assert counts(api, band) == (rows, 0) and counts(api, fan) == (0, rows)
        assert stored_counts(sql, band) == (rows, 0) and stored_counts(sql, fan) == (0, rows)
        followed, unfollowed = events(sql, "user.followed"), events(sql, "user.unfollowed")
        assert len(followed) - len(unfollowed) == rows  # an event per real change, no more

    ok(follow(api, api, "hammer", band))
    assert counts(api, band) == (1, 0)


def test_everyone_following_everyone_at_once_neither_deadlocks_nor_miscounts(
    api: Any, live_server: Any, sql: Any
) -> None:
    """A→B and B→A at the same moment lock the same two profiles: in id order, never a cycle."""
    subs = [f"peer{i}" for i in range(8)]
    ids = {sub: me(api, sub) for sub in subs}
    pairs = [(a, b) for a in subs for b in subs if a != b]

    def call(a: str, b: str, method: str) -> Callable[[httpx.Client], httpx.Response]:
        return lambda client: follow(client, api, a, ids[b], method)

    for method, expected in (("POST", 7), ("DELETE", 0)):
        results = in_parallel([call(a, b, method) for a, b in pairs], live_server.url)
        assert {status for status, _ in results} == {200}, results
        assert edge_rows(sql) == 8 * expected
        for user in ids.values():
            assert counts(api, user) == (expected, expected)


async def test_recount_racing_new_follows_stays_exact(
    api: Any, kernel: Any, live_server: Any, sql: Any
) -> None:
    """A ban's recount runs, again and again, while others follow the same users: no follow
    is lost or doubled (the counter rows are locked before counting)."""
    from skills.user_follow_system import service

    spammer = me(api, "spammer")
    hubs = [me(api, f"hub{i}") for i in range(8)]
    for hub in hubs:
        ok(follow(api, api, "spammer", hub))
    subs = [f"late{i:02d}" for i in range(10)]
    for sub in subs:
        me(api, sub)
    await set_banned(kernel, spammer, True)

    def call(sub: str, hub: str) -> Callable[[httpx.Client], httpx.Response]:
        return lambda client: follow(client, api, sub, hub)

    done = threading.Event()

    def follow_all() -> list[Any]:
        try:
            return in_parallel([call(s, h) for s in subs for h in hubs], live_server.url)
        finally:
            done.set()

    async def recount_until_done() -> int:
        runs = 0
        async with kernel.db.session() as session:
            while runs == 0 or not done.is_set():
                await service.recount_neighbours(kernel, session, uuid.UUID(spammer), batch=1)
                runs += 1
        return runs

    results, runs = await asyncio.gather(asyncio.to_thread(follow_all), recount_until_done())
    assert {status for status, _ in results} == {200} and runs >= 1
    for hub in hubs:
        assert edge_rows(sql, following=hub) == 11  # the banned follower's edge is kept…
        assert stored_counts(sql, hub) == (10, 0)  # …but not counted
        assert counts(api, hub) == (10, 0)


# -- public module ----------------------------------------------------------------------------
async def test_public_api_for_feed_and_fan_out(api: Any, kernel: Any) -> None:
    from sqlalchemy import select

    from skills.user_follow_system.api import (
        FollowerBatch,
        followee_ids_query,
        follower_ids,
        is_following,
    )
    from skills.user_profile.api import UserProfile

    author = me(api, "author")
    readers = [me(api, f"reader{i}") for i in range(5)]
    for i in range(5):
        ok(follow(api, api, f"reader{i}", author))
        ok(follow(api, api, "author", readers[i]))
    await set_banned(kernel, readers[2], True)
    author_id = uuid.UUID(author)

    async with kernel.db.session() as session:
        # Fan-out: visible followers only, newest first, in resumable batches.
        seen: list[list[uuid.UUID]] = []
        after: str | None = None
        while True:
            batch = await follower_ids(session, author_id, after=after, limit=2)
            assert isinstance(batch, FollowerBatch)
            seen.append(batch.ids)
            if batch.next_after is None:
                break
            after = batch.next_after
        expected = [uuid.UUID(r) for r in reversed(readers) if r != readers[2]]
        assert [user for ids in seen for user in ids] == expected
        assert [len(ids) for ids in seen] == [2, 2, 0]  # a full batch may be the last one
        with pytest.raises(ValueError):
            await follower_ids(session, author_id, limit=0)

        # Feed: the ids the author follows, as a sub-select other skills embed.
        stmt = select(UserProfile).where(
            UserProfile.id.in_(followee_ids_query(author_id))  # type: ignore[attr-defined]
        )
        assert len((await session.scalars(stmt)).all()) == 4  # the banned one is left out
        hidden_too = followee_ids_query(author_id, include_hidden=True)
        assert len((await session.scalars(hidden_too)).all()) == 5
        assert set((await session.scalars(followee_ids_query(author_id))).all()) == {
            uuid.UUID(r) for r in readers if r != readers[2]
        }

        assert await is_following(session, uuid.UUID(readers[0]), author_id) is True
        assert await is_following(session, author_id, uuid.UUID(readers[2])) is True  # raw edge
        assert await is_following(session, author_id, uuid.uuid4()) is False


# -- documentation and failure modes ---------------------------------------------------------
def test_openapi_documents_the_contract(api: Any) -> None:
    schema = api.get("/openapi.json").json()
    paths = schema["paths"]
    follow_path = paths[f"{API}/users/{{user_id}}/follow"]
    assert set(follow_path) == {"post", "delete", "get"}
    for method in ("post", "delete"):
        op = follow_path[method]
        assert op["tags"] == ["user-follow-system"]
        assert {"200", "401", "403", "404", "422"} <= set(op["responses"])
        assert "ACCOUNT_BANNED" in str(op["responses"]["403"])
        assert "CANNOT_FOLLOW_SELF" in str(op["responses"]["422"])
        ok_response = op["responses"]["200"]["content"]["application/json"]
        assert ok_response["schema"]["$ref"].endswith("/FollowState")
        assert ok_response["examples"]["following"]["value"]["following"] is True
    state = schema["components"]["schemas"]["FollowState"]
    assert set(state["required"]) == {"following", "followed_by", "followers_count"}
    assert state["examples"][0]["followers_count"] == 1205
    for which in ("followers", "following"):
        op = paths[f"{API}/users/{{user_id}}/{which}"]["get"]
        assert op["tags"] == ["user-follow-system"]
        assert {p["name"] for p in op["parameters"]} == {"user_id", "limit", "cursor"}
        ref = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        page = schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]
        assert page["properties"]["items"]["items"]["$ref"].endswith("/ProfileRead")


def test_follow_works_with_redis_down(
    api: Any, make_settings: Callable[..., Any], jwks_server: Any, sql: Any
) -> None:
    from core.app import create_app
    from core.embedded import free_port
    from core.testing.live import LiveServer

    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    app = create_app(make_settings(redis_url=dead_redis, broker_url=dead_redis))
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:

        def auth(sub: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {jwks_server.mint(sub)}"}

        uma = client.get(ME, headers=auth("uma")).json()["id"]
        vic = client.get(ME, headers=auth("vic")).json()["id"]
        response = client.post(f"{API}/users/{uma}/follow", headers=auth("vic"))
        assert response.status_code == 200, response.text
        assert response.json()["followers_count"] == 1
        assert client.get(f"{API}/users/{uma}").json()["followers_count"] == 1
        listed = client.get(f"{API}/users/{uma}/followers").json()["items"]
        assert [item["id"] for item in listed] == [vic]
    assert events(sql, "user.followed")[0]["following_id"] == uma  # waits in the outbox
