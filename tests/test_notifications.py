"""notification-system over real HTTP with a real ``soundhive worker`` subprocess, on the real
PostgreSQL and Redis of the test session.

Notifications are only ever made by the worker from outbox events, so tests act through the
other skills' endpoints (like, comment, follow) and wait for the result. "Nothing more
happened" is asserted once the broker's default queue is drained (Dramatiq keeps a message in
``<queue>.msgs`` until it is acknowledged). Bans and hand-made outbox events go through a
kernel of the test's own event loop, as admin-moderation and the scheduler would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import redis

from core.testing.plugin import wait_for
from tests.music_helpers import ready_track, sql

V1 = "/api/v1"
STREAM = f"{V1}/notifications/stream"
PROBLEM = "application/problem+json"
FIELDS = {"id", "seq", "type", "actor_id", "track_id", "comment_id", "read", "created_at", "actor"}
FOLLOW = "INSERT INTO follows (id, follower_id, following_id) VALUES (gen_random_uuid(), %s, %s)"
QUEUES = ("soundhive-tasks:default.msgs", "soundhive-tasks:default.DQ.msgs")


# -- helpers --------------------------------------------------------------------------------
@pytest.fixture
async def kernel(make_settings: Callable[..., Any], api: Any) -> AsyncIterator[Any]:
    """A kernel on this test's event loop (never the live server's, which has its own loop)."""
    from core.kernel import Kernel

    k = Kernel(make_settings())
    yield k
    await k.aclose()


@pytest.fixture
def rdb(soundhive_services: Any) -> redis.Redis:
    return redis.Redis.from_url(soundhive_services.redis_url, decode_responses=True)


def user(api: Any, sub: str) -> tuple[dict[str, str], str]:
    """Headers for ``sub`` and its (provisioned) profile id."""
    headers = api.auth(sub)
    response = api.get(f"{V1}/users/me", headers=headers)
    assert response.status_code == 200, response.text
    return headers, response.json()["id"]


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["code"] == code and body["status"] == status and body["detail"]
    return body


def items(api: Any, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    response = api.get(f"{V1}/notifications", headers=headers, params=params)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def unread(api: Any, headers: dict[str, str]) -> int:
    response = api.get(f"{V1}/notifications/unread-count", headers=headers)
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"unread_count"}
    return int(response.json()["unread_count"])


def arrive(api: Any, headers: dict[str, str], n: int, timeout: float = 10) -> list[dict[str, Any]]:
    """Wait until the user has ``n`` notifications; returns them (newest first)."""
    return wait_for(lambda: (got := items(api, headers)) and len(got) >= n and got, timeout)  # type: ignore[no-any-return]


def drained(services: Any, rdb: redis.Redis, timeout: float = 10) -> None:
    """Every event emitted so far is relayed (the API relays after its response is sent) and
    every job on the default queue (and its retry queue) has been acknowledged."""
    [(now,)] = sql(services, "SELECT now()")
    pending = "SELECT count(*) FROM core_outbox WHERE relayed_at IS NULL AND occurred_at <= %s"

    def done() -> bool:
        relayed = sql(services, pending, now) == [(0,)]
        return relayed and sum(int(rdb.hlen(q)) for q in QUEUES) == 0  # type: ignore[arg-type]

    wait_for(done, timeout)


def like(api: Any, headers: dict[str, str], track_id: str, on: bool = True) -> None:
    method = api.post if on else api.delete
    response = method(f"{V1}/tracks/{track_id}/like", headers=headers)
    assert response.status_code == 200, response.text


def summary(found: list[dict[str, Any]]) -> set[tuple[str, str, str | None, str | None]]:
    return {(n["type"], n["actor_id"], n["track_id"], n["comment_id"]) for n in found}


async def ban(kernel: Any, user_id: str, banned: bool = True) -> None:
    from skills.user_profile import api as profiles

    async with kernel.db.session() as session, profiles.transaction(kernel, session):
        await profiles.set_banned(session, uuid.UUID(user_id), banned)


class Sse:
    """One ``GET /notifications/stream``, read by a task into a queue of parsed events
    (``{"event", "id", "data", "comment", "retry"}``)."""

    def __init__(self, base_url: str, headers: dict[str, str]) -> None:
        self.client = httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(10, read=None))
        self.headers = headers
        self.events: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        self.ended = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.closed = False

    async def __aenter__(self) -> Sse:
        self._cm = self.client.stream("GET", STREAM, headers=self.headers)
        self.response = await self._cm.__aenter__()
        if self.response.status_code == 200:
            self.task = asyncio.create_task(self._read())
        else:
            await self.response.aread()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.closed:
            return
        self.closed = True
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(BaseException):
                await self.task
        with contextlib.suppress(Exception):
            await self._cm.__aexit__(None, None, None)
        await self.client.aclose()

    async def _read(self) -> None:
        fields: dict[str, str] = {}
        try:
            async for line in self.response.aiter_lines():
                if not line:
                    if fields:
                        self.events.put_nowait(fields)
                    fields = {}
                elif line.startswith(":"):
                    fields["comment"] = line[1:].strip()
                else:
                    key, _, value = line.partition(":")
                    fields[key] = value.removeprefix(" ")
        except httpx.HTTPError:
            pass
        finally:
            self.ended.set()

    async def next(self, within: float = 3, *, kind: str = "notification") -> dict[str, Any]:
        """The next event of ``kind`` (``"comment"`` for comment lines such as pings)."""
        deadline = time.monotonic() + within
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {kind} event within {within}s")
            try:
                got = await asyncio.wait_for(self.events.get(), remaining)
            except TimeoutError:
                continue
            if kind == "comment" and "comment" in got:
                return got
            if got.get("event") == kind:
                return {**got, "data": json.loads(got["data"])}


def slots(rdb: redis.Redis, user_id: str) -> int:
    return int(rdb.zcard(f"sh:notification-stream:{user_id}:slots"))  # type: ignore[arg-type]


# -- creation from events -----------------------------------------------------------------
async def test_like_once_per_liker_never_to_yourself(
    api: Any, soundhive_services: Any, real_worker: Any, rdb: redis.Redis
) -> None:
    owner, _ = user(api, "owner")
    fan, fan_id = user(api, "fan")
    other, other_id = user(api, "other")
    track = ready_track(api, soundhive_services, owner)["id"]

    like(api, fan, track)
    [first] = arrive(api, owner, 1)
    assert set(first) == FIELDS
    assert first["type"] == "like" and first["actor_id"] == fan_id
    assert first["track_id"] == track and first["comment_id"] is None
    assert first["read"] is False and first["created_at"].endswith("Z")
    assert first["actor"]["id"] == fan_id and first["actor"]["handle"]

    like(api, fan, track, on=False)  # like / unlike / like again
    like(api, fan, track)
    like(api, owner, track)  # your own like notifies nobody
    like(api, other, track)
    drained(soundhive_services, rdb)
    found = arrive(api, owner, 2)
    assert summary(found) == {("like", fan_id, track, None), ("like", other_id, track, None)}
    assert found[1]["id"] == first["id"]  # the first row survived; nothing was re-made
    assert items(api, fan) == [] and items(api, other) == []
    assert sql(soundhive_services, "SELECT count(*) FROM notifications") == [(2,)]


async def test_follow_comment_and_reply(
    api: Any, soundhive_services: Any, real_worker: Any, rdb: redis.Redis
) -> None:
    owner, owner_id = user(api, "owner")
    ann, ann_id = user(api, "ann")
    bob, bob_id = user(api, "bob")
    track = ready_track(api, soundhive_services, owner)["id"]

    for method in (api.post, api.delete, api.post):  # follow / unfollow / follow: one
        assert method(f"{V1}/users/{owner_id}/follow", headers=ann).status_code == 200
    top = api.post(f"{V1}/tracks/{track}/comments", json={"body": "nice"}, headers=ann).json()
    reply = api.post(
        f"{V1}/tracks/{track}/comments",
        json={"body": "agreed", "parent_id": top["id"]},
        headers=bob,
    ).json()
    answer = api.post(
        f"{V1}/tracks/{track}/comments",
        json={"body": "thanks", "parent_id": top["id"]},
        headers=owner,
    ).json()
    drained(soundhive_services, rdb)

    assert summary(arrive(api, owner, 3)) == {
        ("follow", ann_id, None, None),
        ("comment", ann_id, track, top["id"]),
        ("comment", bob_id, track, reply["id"]),  # a reply also tells the track's owner
    }
    assert summary(items(api, ann)) == {  # the parent's author hears of both replies
        ("comment", bob_id, track, reply["id"]),
        ("comment", owner_id, track, answer["id"]),
    }
    assert items(api, bob) == []


async def test_new_public_track_fans_out_to_followers_in_batches(
    api: Any, soundhive_services: Any, real_worker: Any, kernel: Any, rdb: redis.Redis
) -> None:
    """``track.created`` through the outbox; 2,500 followers (seeded in SQL) take three
    ``fan_out`` jobs of 1,000. Unlisted tracks and non-followers get nothing."""
    from core.events import emit, relay_pending

    star, star_id = user(api, "star")
    fan, _ = user(api, "fan")
    _, stranger_id = user(api, "stranger")
    assert api.post(f"{V1}/users/{star_id}/follow", headers=fan).status_code == 200
    sql(
        soundhive_services,
        "INSERT INTO user_profiles (id, sub, handle, display_name) "
        "SELECT gen_random_uuid(), 'seed-' || n, 'seed_' || n, 'Seed ' || n "
        "FROM generate_series(1, 2499) AS n",
    )
    sql(
        soundhive_services,
        "INSERT INTO follows (id, follower_id, following_id) "
        "SELECT gen_random_uuid(), id, %s FROM user_profiles WHERE sub LIKE 'seed-%%'",
        star_id,
    )
    public = ready_track(api, soundhive_services, star)["id"]
    unlisted = ready_track(api, soundhive_services, star, visibility="unlisted")["id"]
    async with kernel.db.session() as session, session.begin():
        for track, visibility in ((unlisted, "unlisted"), (public, "public")):
            payload = {"track_id": track, "owner_id": star_id, "visibility": visibility}
            emit(session, "track.created", payload)
    assert await relay_pending(kernel) >= 2

    count = "SELECT count(*) FROM notifications WHERE type = 'new_track' AND track_id = %s"
    wait_for(lambda: sql(soundhive_services, count, public) == [(2500,)], timeout=20)
    drained(soundhive_services, rdb)
    [mine] = [n for n in items(api, fan) if n["type"] == "new_track"]
    assert (mine["actor_id"], mine["track_id"], mine["actor"]["id"]) == (star_id, public, star_id)
    assert sql(soundhive_services, count, unlisted) == [(0,)]
    assert sql(
        soundhive_services,
        "SELECT count(*) FROM notifications WHERE recipient_id = %s",
        stranger_id,
    ) == [(0,)]

    async with kernel.db.session() as session, session.begin():  # redelivery changes nothing
        emit(
            session,
            "track.created",
            {"track_id": public, "owner_id": star_id, "visibility": "public"},
        )
    assert await relay_pending(kernel) >= 1
    drained(soundhive_services, rdb)
    assert sql(soundhive_services, count, public) == [(2500,)]


async def test_event_waits_in_the_outbox_while_the_broker_is_down(
    api: Any, soundhive_services: Any, real_worker: Any, kernel: Any, make_settings: Any
) -> None:
    from core.events import emit, relay_pending
    from core.kernel import Kernel

    owner, owner_id = user(api, "owner")
    _, fan_id = user(api, "fan")
    sql(soundhive_services, FOLLOW, fan_id, owner_id)  # the row, without the endpoint's event
    down = Kernel(make_settings(broker_url="redis://127.0.0.1:1/0"))  # nothing listens there
    try:
        async with down.db.session() as session, session.begin():
            event = emit(
                session, "user.followed", {"follower_id": fan_id, "following_id": owner_id}
            )
        with pytest.raises(Exception):  # noqa: B017 - any connection error
            await relay_pending(down)
    finally:
        await down.aclose()
    pending = "SELECT count(*) FROM core_outbox WHERE id = %s AND relayed_at IS NULL"
    assert sql(soundhive_services, pending, str(event.id)) == [(1,)]
    assert items(api, owner) == []

    assert await relay_pending(kernel) >= 1  # the broker is back (the scheduler's relay loop)
    [made] = arrive(api, owner, 1)
    assert (made["type"], made["actor_id"]) == ("follow", fan_id)
    assert sql(soundhive_services, pending, str(event.id)) == [(0,)]


async def test_banned_account_stops_generating_and_its_notifications_hide(
    api: Any, soundhive_services: Any, kernel: Any, rdb: redis.Redis, request: Any
) -> None:
    """The like is committed while no worker runs, the liker is banned, then the worker
    starts: the late event makes nothing. Banning an actor later hides what it made."""
    from core.events import relay_pending

    owner, _ = user(api, "owner")
    spammer, spammer_id = user(api, "spammer")
    fan, fan_id = user(api, "fan")
    track = ready_track(api, soundhive_services, owner)["id"]
    like(api, spammer, track)  # queued on the broker; nobody consumes yet
    await ban(kernel, spammer_id)
    request.getfixturevalue("real_worker")
    like(api, fan, track)
    drained(soundhive_services, rdb)
    [only] = arrive(api, owner, 1)
    assert only["actor_id"] == fan_id
    assert unread(api, owner) == 1  # now cached

    await ban(kernel, fan_id)
    assert await relay_pending(kernel) >= 1  # user.banned → drop the counts it changes
    wait_for(lambda: unread(api, owner) == 0)
    assert items(api, owner) == []
    problem(
        api.post(f"{V1}/notifications/{only['id']}/read", headers=owner),
        404,
        "NOTIFICATION_NOT_FOUND",
    )
    await ban(kernel, fan_id, banned=False)
    assert await relay_pending(kernel) >= 1
    wait_for(lambda: unread(api, owner) == 1)
    assert [n["id"] for n in items(api, owner)] == [only["id"]]


async def test_counts_follow_the_subject_going_private_hidden_and_back(
    api: Any, soundhive_services: Any, real_worker: Any, kernel: Any, rdb: redis.Redis
) -> None:
    """A fan's cached unread count names a track; the owner makes it private, a moderator
    hides it: each change drops the cached count (``track.updated`` / ``track.hidden``), so
    the count follows at once instead of after its 60 s TTL. A title edit drops nothing."""
    from core.events import emit, relay_pending

    star, star_id = user(api, "star")
    fan, fan_id = user(api, "fan")
    assert api.post(f"{V1}/users/{star_id}/follow", headers=fan).status_code == 200
    track = ready_track(api, soundhive_services, star)["id"]
    async with kernel.db.session() as session, session.begin():
        payload = {"track_id": track, "owner_id": star_id, "visibility": "public"}
        emit(session, "track.created", payload)
    assert await relay_pending(kernel) >= 1
    wait_for(lambda: unread(api, fan) == 1)  # cached from here on
    key = f"sh:notification-unread:{fan_id}"
    assert rdb.get(key) == "1"

    renamed = api.patch(f"{V1}/tracks/{track}", json={"title": "New name"}, headers=star)
    assert renamed.status_code == 200, renamed.text
    drained(soundhive_services, rdb)
    assert rdb.get(key) == "1"  # nothing that counts changed: the cache stays

    private = api.patch(f"{V1}/tracks/{track}", json={"visibility": "private"}, headers=star)
    assert private.status_code == 200, private.text
    wait_for(lambda: rdb.get(key) is None)
    assert unread(api, fan) == 0 and items(api, fan) == []

    public = api.patch(f"{V1}/tracks/{track}", json={"visibility": "public"}, headers=star)
    assert public.status_code == 200, public.text
    wait_for(lambda: rdb.get(key) is None)
    assert unread(api, fan) == 1

    moderator = api.auth("mod", "moderator")
    hidden = api.post(f"{V1}/admin/tracks/{track}/hide", json={"note": "spam"}, headers=moderator)
    assert hidden.status_code in (200, 204), hidden.text
    wait_for(lambda: rdb.get(key) is None)
    assert unread(api, fan) == 0


# -- reading and read state ---------------------------------------------------------------
async def test_read_state_pages_cache_and_privacy(
    api: Any, soundhive_services: Any, real_worker: Any, rdb: redis.Redis
) -> None:
    owner, owner_id = user(api, "owner")
    fans = [user(api, f"fan{i}") for i in range(4)]
    track = ready_track(api, soundhive_services, owner)["id"]
    for headers, _ in fans[:3]:
        like(api, headers, track)
    found = arrive(api, owner, 3)
    assert [n["seq"] for n in found] == sorted((n["seq"] for n in found), reverse=True)

    key = f"sh:notification-unread:{owner_id}"
    assert unread(api, owner) == 3 and rdb.get(key) == "3"
    assert 0 < int(rdb.ttl(key)) <= 60  # type: ignore[arg-type]
    like(api, fans[3][0], track)  # the worker drops the cached count with the new row
    wait_for(lambda: unread(api, owner) == 4)

    first = api.get(f"{V1}/notifications", headers=owner, params={"limit": 3}).json()
    rest = api.get(
        f"{V1}/notifications", headers=owner, params={"limit": 3, "cursor": first["next_cursor"]}
    ).json()
    assert len(first["items"]) == 3 and len(rest["items"]) == 1 and rest["next_cursor"] is None
    everything = first["items"] + rest["items"]
    assert {n["actor_id"] for n in everything} == {fan_id for _, fan_id in fans}
    problem(
        api.get(f"{V1}/notifications", headers=owner, params={"cursor": "nope"}),
        422,
        "INVALID_CURSOR",
    )

    target = everything[-1]["id"]
    intruder = fans[0][0]  # only the recipient may see or change a notification
    assert items(api, intruder) == [] and unread(api, intruder) == 0
    problem(
        api.post(f"{V1}/notifications/{target}/read", headers=intruder),
        404,
        "NOTIFICATION_NOT_FOUND",
    )
    problem(
        api.post(f"{V1}/notifications/{uuid.uuid4()}/read", headers=owner),
        404,
        "NOTIFICATION_NOT_FOUND",
    )
    assert sql(soundhive_services, "SELECT count(*) FROM notifications WHERE read") == [(0,)]

    assert unread(api, owner) == 4 and rdb.exists(key)
    for _ in range(2):  # idempotent
        done = api.post(f"{V1}/notifications/{target}/read", headers=owner)
        assert (
            done.status_code == 200 and done.json()["id"] == target and done.json()["read"] is True
        )
    assert not rdb.exists(key) and unread(api, owner) == 3
    assert [n["id"] for n in items(api, owner, unread="false")] == [target]
    assert target not in {n["id"] for n in items(api, owner, unread="true")}
    assert len(items(api, owner, unread="true")) == 3

    assert api.post(f"{V1}/notifications/read-all", headers=owner).json() == {"updated": 3}
    assert api.post(f"{V1}/notifications/read-all", headers=owner).json() == {"updated": 0}
    assert unread(api, owner) == 0 and items(api, owner, unread="true") == []

    for method, path in (
        ("GET", ""),
        ("GET", "/unread-count"),
        ("POST", "/read-all"),
        ("GET", "/stream"),
    ):
        problem(api.request(method, f"{V1}/notifications{path}"), 401, "UNAUTHORIZED")


# -- the live stream ------------------------------------------------------------------------
async def test_stream_delivers_live_and_resumes_after_last_event_id(
    api: Any, live_server: Any, soundhive_services: Any, real_worker: Any
) -> None:
    owner, _ = user(api, "owner")
    ann, ann_id = user(api, "ann")
    bob, bob_id = user(api, "bob")
    track = ready_track(api, soundhive_services, owner)["id"]

    async with Sse(live_server.url, owner) as sse:
        assert sse.response.headers["content-type"].startswith("text/event-stream")
        hello = await sse.next(kind="comment")
        assert hello["comment"] == "connected" and hello["retry"] == "3000"
        started = time.monotonic()
        like(api, ann, track)
        got = await sse.next(within=3)
        took = time.monotonic() - started
        assert took < 2.5, f"live notification took {took:.2f}s"
        assert got["data"]["type"] == "like" and got["data"]["actor_id"] == ann_id
        assert got["data"]["actor"]["id"] == ann_id and got["data"]["track_id"] == track
        assert got["id"] == str(got["data"]["seq"])

    like(api, bob, track)  # while the client is away
    arrive(api, owner, 2)
    async with Sse(live_server.url, {**owner, "Last-Event-ID": got["id"]}) as sse:
        replayed = await sse.next()
        assert replayed["data"]["actor_id"] == bob_id and int(replayed["id"]) > int(got["id"])
        with pytest.raises(AssertionError):  # the already-seen one is not sent again
            await sse.next(within=0.5)
    async with Sse(live_server.url, {**owner, "Last-Event-ID": "0"}) as sse:
        assert [(await sse.next())["data"]["actor_id"] for _ in range(2)] == [ann_id, bob_id]
    async with Sse(live_server.url, {**owner, "Last-Event-ID": "soon"}) as sse:
        assert sse.response.status_code == 422


async def test_one_recipients_notifications_commit_in_seq_order(
    api: Any, kernel: Any, soundhive_services: Any
) -> None:
    """``seq`` is drawn at insert: a second notification for the same recipient (one by one
    or in a fan-out batch) waits until the first commits, so it draws a larger ``seq`` and
    commits after. Otherwise a stream resuming from the larger one (``Last-Event-ID``, or
    polling while Redis is down) would skip the smaller one, committed later. Another
    recipient does not wait."""
    from sqlalchemy import true

    from skills.notification_system import repository as repo
    from skills.notification_system import service

    _, me = user(api, "order-me")
    _, ann = user(api, "order-ann")
    _, bob = user(api, "order-bob")
    _, other = user(api, "order-other")
    artist, artist_id = user(api, "order-artist")
    track = ready_track(api, soundhive_services, artist)["id"]
    sql(soundhive_services, FOLLOW, me, artist_id)
    me_id = uuid.UUID(me)

    def follow(recipient: str, actor: str) -> Any:
        return service.notify(
            kernel,
            recipient_id=uuid.UUID(recipient),
            actor_id=uuid.UUID(actor),
            type_="follow",
            still=true(),
        )

    pending: list[asyncio.Task[Any]] = []
    try:
        async with kernel.db.session() as first, first.begin():
            await repo.hold_recipients(first, [me_id])
            early = await repo.insert_one(
                first,
                recipient_id=me_id,
                type_="follow",
                actor_id=uuid.UUID(ann),
                track_id=None,
                comment_id=None,
                still=true(),
            )
            assert early is not None
            single = asyncio.create_task(follow(me, bob))
            batch = asyncio.create_task(
                service.fan_out_batch(
                    kernel,
                    track_id=uuid.UUID(track),
                    owner_id=uuid.UUID(artist_id),
                    after=None,
                    limit=10,
                )
            )
            pending += [single, batch]
            elsewhere = await asyncio.wait_for(follow(other, bob), 5)  # not held: goes through
            assert elsewhere is not None and elsewhere.seq > early.seq
            await asyncio.sleep(0.5)
            assert not single.done() and not batch.done()  # both wait for the first's commit
        later = await asyncio.wait_for(single, 5)
        made, _ = await asyncio.wait_for(batch, 5)
    finally:  # never leave a task holding a transaction open past the test (the wipe waits)
        await asyncio.gather(*pending, return_exceptions=True)
    assert later is not None and later.seq > early.seq
    assert [(recipient, item.type) for recipient, item in made] == [(me_id, "new_track")]
    assert made[0][1].seq > early.seq
    listed = sql(
        soundhive_services,
        "SELECT seq, type FROM notifications WHERE recipient_id = %s ORDER BY seq",
        me,
    )
    assert listed[0] == (early.seq, "follow") and len(listed) == 3


async def test_stream_cap_per_user_and_slots_freed_on_disconnect(
    api: Any, live_server: Any, rdb: redis.Redis
) -> None:
    owner, owner_id = user(api, "owner")
    other, _ = user(api, "other")
    async with contextlib.AsyncExitStack() as stack:
        opened = [await stack.enter_async_context(Sse(live_server.url, owner)) for _ in range(3)]
        for sse in opened:
            assert sse.response.status_code == 200
            await sse.next(kind="comment")
        assert slots(rdb, owner_id) == 3
        async with Sse(live_server.url, owner) as fourth:
            assert fourth.response.status_code == 429
            body = json.loads(fourth.response.text)
            assert body["code"] == "TOO_MANY_STREAMS" and fourth.response.headers["retry-after"]
        async with Sse(live_server.url, other) as theirs:  # per user, not global
            assert theirs.response.status_code == 200
        await opened[0].__aexit__()
        wait_for(lambda: slots(rdb, owner_id) == 2, timeout=5)
        async with Sse(live_server.url, owner) as again:
            assert again.response.status_code == 200
    wait_for(lambda: slots(rdb, owner_id) == 0, timeout=5)


async def test_stream_heartbeats_and_ends_cleanly_on_shutdown(
    api: Any, make_settings: Any, monkeypatch: pytest.MonkeyPatch, rdb: redis.Redis
) -> None:
    """A second server with a 0.3 s heartbeat, stopped the way SIGTERM stops ``soundhive
    serve`` (uvicorn's ``handle_exit``, which sse-starlette hooks): the open stream ends by
    itself, well before uvicorn's graceful timeout would cancel it, and gives its slot back."""
    from sse_starlette.sse import AppStatus

    from core.app import create_app
    from core.testing.live import LiveServer

    monkeypatch.setenv("SOUNDHIVE_NOTIFICATIONS_PING_SECONDS", "0.3")
    owner, owner_id = user(api, "owner")
    server = LiveServer(create_app(make_settings())).start()
    try:
        async with Sse(server.url, owner) as sse:
            await sse.next(kind="comment")
            for _ in range(2):
                assert (await sse.next(kind="comment", within=2))["comment"].startswith("ping")
            assert slots(rdb, owner_id) == 1
            server.server.handle_exit(signal.SIGTERM, None)
            started = time.monotonic()
            await asyncio.wait_for(sse.ended.wait(), timeout=5)
            assert time.monotonic() - started < 2  # uvicorn would cancel it at 2 s
        wait_for(lambda: slots(rdb, owner_id) == 0, timeout=2)
    finally:
        await asyncio.to_thread(server.stop)
        AppStatus.should_exit = False  # process-wide: other servers in this process go on


# -- in process: batching, bad input, Redis down --------------------------------------------
async def test_fan_out_chains_small_batches_and_stops_for_hidden_tracks(
    api: Any, soundhive_services: Any, stub_worker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The actors on an in-process worker with batches of 2: five visible followers take three
    ``fan_out`` jobs; a banned follower is skipped; a hidden track stops after one job."""
    from core import metrics

    monkeypatch.setenv("SOUNDHIVE_NOTIFICATIONS_FANOUT_BATCH", "2")
    kernel = stub_worker
    star, star_id = user(api, "star")
    followers = [user(api, f"fan{i}")[1] for i in range(6)]
    for fan_id in followers:
        sql(soundhive_services, FOLLOW, fan_id, star_id)
    sql(soundhive_services, "UPDATE user_profiles SET is_banned = true WHERE id = %s", followers[0])
    public = ready_track(api, soundhive_services, star)["id"]
    hidden = ready_track(api, soundhive_services, star)["id"]
    sql(soundhive_services, "UPDATE tracks SET is_hidden = true WHERE id = %s", hidden)

    jobs = metrics.JOBS.labels("notification-system.fan_out", "success")
    before = jobs._value.get()

    def deliver(verb: str, event_type: str, payload: dict[str, Any]) -> None:
        event = {"id": str(uuid.uuid4()), "type": event_type, "occurred_at": "2026-01-01T00:00:00Z"}
        kernel.send(f"notification-system.{verb}", **event, payload=payload)
        kernel.broker.join("default", timeout=10_000, fail_fast=True)

    created = {"track_id": public, "owner_id": star_id, "visibility": "public"}
    await asyncio.to_thread(deliver, "on_track_created", "track.created", created)
    assert jobs._value.get() - before == 3
    rows = "SELECT recipient_id::text FROM notifications WHERE type = 'new_track' AND track_id = %s"
    assert sorted(r[0] for r in sql(soundhive_services, rows, public)) == sorted(followers[1:])

    await asyncio.to_thread(deliver, "on_track_created", "track.created", created)  # again
    assert len(sql(soundhive_services, rows, public)) == 5
    before = jobs._value.get()
    await asyncio.to_thread(
        deliver, "on_track_created", "track.created", {**created, "track_id": hidden}
    )
    assert jobs._value.get() - before == 1 and sql(soundhive_services, rows, hidden) == []

    for verb, event_type in (
        ("on_track_liked", "track.liked"),
        ("on_comment_created", "comment.created"),
        ("on_user_followed", "user.followed"),
        ("on_account_changed", "user.banned"),
    ):  # garbage and missing ids are dropped, not retried forever
        for payload in ({}, {"track_id": "nope", "user_id": 7, "follower_id": None}):
            await asyncio.to_thread(deliver, verb, event_type, payload)
    assert sql(soundhive_services, "SELECT count(*) FROM notifications") == [(5,)]


async def test_without_redis_lists_count_and_streams_use_postgres(
    api: Any, make_settings: Any, monkeypatch: pytest.MonkeyPatch, soundhive_services: Any
) -> None:
    """Redis unreachable: the API answers from PostgreSQL, the stream cap is kept per process
    and streams poll the database, so a notification still arrives."""
    from core.app import create_app
    from core.kernel import Kernel
    from core.testing.live import LiveServer
    from skills.notification_system import tasks

    monkeypatch.setenv("SOUNDHIVE_NOTIFICATIONS_POLL_SECONDS", "0.2")
    owner, owner_id = user(api, "owner")
    fan, fan_id = user(api, "fan")
    track = ready_track(api, soundhive_services, owner)["id"]
    like(api, fan, track)  # its event goes to the real broker, where no worker listens
    nowhere = "redis://127.0.0.1:1/0"
    down = Kernel(make_settings(redis_url=nowhere, broker_url=nowhere))
    server = LiveServer(create_app(make_settings(redis_url=nowhere, broker_url=nowhere))).start()
    try:
        assert unread(api, owner) == 0
        async with contextlib.AsyncExitStack() as stack:
            streams = [await stack.enter_async_context(Sse(server.url, owner)) for _ in range(3)]
            async with Sse(server.url, owner) as fourth:
                assert fourth.response.status_code == 429
            await streams[0].next(kind="comment")
            payload = {"track_id": track, "user_id": fan_id, "owner_id": owner_id}
            await tasks.on_track_liked(down, id="e1", type="track.liked", payload=payload)
            got = await streams[0].next(within=3)
            assert got["data"]["actor_id"] == fan_id and got["data"]["type"] == "like"
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            count = await http.get(f"{V1}/notifications/unread-count", headers=owner)
            assert count.status_code == 200 and count.json() == {"unread_count": 1}
            [item] = (await http.get(f"{V1}/notifications", headers=owner)).json()["items"]
            done = await http.post(f"{V1}/notifications/{item['id']}/read", headers=owner)
            assert done.status_code == 200 and done.json()["read"] is True
    finally:
        await asyncio.to_thread(server.stop)
        await down.aclose()
