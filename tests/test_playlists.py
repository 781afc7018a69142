"""playlist-management over real HTTP, on the real PostgreSQL and Redis of the test session.

Tracks come from the real upload API (``ready_track``). Bans go through
``skills.user_profile.api`` on a kernel of the test's own event loop, as moderation will.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from core.testing.plugin import wait_for
from tests.music_helpers import ready_track, sql

PL = "/api/v1/playlists"
PROBLEM = "application/problem+json"
FIELDS = {
    "id",
    "owner_id",
    "title",
    "description",
    "visibility",
    "forked_from_id",
    "track_count",
    "created_at",
    "updated_at",
}


# -- helpers --------------------------------------------------------------------------------
def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["code"] == code and body["status"] == status and body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]
    return body


def create(api: Any, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    body.setdefault("title", "Mix")
    r = api.post(PL, json=body, headers=headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


def detail(api: Any, playlist_id: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    r = api.get(f"{PL}/{playlist_id}", headers=headers or {})
    assert r.status_code == 200, r.text
    return dict(r.json())


def order(view: dict[str, Any]) -> list[tuple[int, str]]:
    """``(position, track title)`` as the view shows them."""
    return [(e["position"], e["track"]["title"]) for e in view["tracks"]]


def add(
    api: Any, playlist_id: str, track_id: str, headers: dict[str, str], position: int | None = None
) -> httpx.Response:
    body: dict[str, Any] = {"track_id": track_id}
    if position is not None:
        body["position"] = position
    response: httpx.Response = api.post(f"{PL}/{playlist_id}/tracks", json=body, headers=headers)
    return response


def stored(services: Any, playlist_id: str) -> list[tuple[int, str]]:
    """``(position, track id)`` straight from the table, in position order."""
    rows = sql(
        services,
        "SELECT position, track_id::text FROM playlist_tracks WHERE playlist_id = %s "
        "ORDER BY position",
        playlist_id,
    )
    return [(int(p), str(t)) for p, t in rows]


def track_count(services: Any, playlist_id: str) -> int:
    return int(sql(services, "SELECT track_count FROM playlists WHERE id = %s", playlist_id)[0][0])


def events(services: Any, event_type: str) -> list[dict[str, Any]]:
    rows = sql(
        services, "SELECT payload FROM core_outbox WHERE type = %s ORDER BY occurred_at", event_type
    )
    return [row[0] for row in rows]


def tracks(api: Any, services: Any, headers: dict[str, str], n: int, **fields: Any) -> list[Any]:
    prefix = fields.pop("prefix", "t")
    return [ready_track(api, services, headers, title=f"{prefix}{i}", **fields) for i in range(n)]


def parallel(calls: list[Callable[[], httpx.Response]]) -> list[httpx.Response]:
    """Run the calls at once (released together by a barrier)."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], httpx.Response]) -> httpx.Response:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


@pytest.fixture
async def kernel(make_settings: Callable[..., Any], api: Any) -> AsyncIterator[Any]:
    """A kernel on this test's event loop (never the live server's)."""
    from core.kernel import Kernel

    k = Kernel(make_settings())
    yield k
    await k.aclose()


async def ban(kernel: Any, user_id: str) -> None:
    from skills.user_profile import api as profiles

    async with kernel.db.session() as session, profiles.transaction(kernel, session):
        assert await profiles.set_banned(session, uuid.UUID(user_id), True)


# -- CRUD -----------------------------------------------------------------------------------
def test_create_read_update_delete(api: Any, soundhive_services: Any) -> None:
    me = api.auth("pl-owner")
    r = api.post(PL, json={"title": "  Night  ", "description": "lofi"}, headers=me)
    assert r.status_code == 201, r.text
    made = r.json()
    assert set(made) == FIELDS
    assert r.headers["location"] == f"{PL}/{made['id']}"
    assert (made["title"], made["description"], made["visibility"]) == ("Night", "lofi", "public")
    assert (made["track_count"], made["forked_from_id"]) == (0, None)
    assert made["created_at"].endswith("Z")
    owner_id = api.get("/api/v1/users/me", headers=me).json()["id"]
    assert made["owner_id"] == owner_id

    view = detail(api, made["id"])
    assert set(view) == FIELDS | {"tracks"} and view["tracks"] == []

    r = api.patch(
        f"{PL}/{made['id']}",
        json={"title": "Day", "description": None, "visibility": "unlisted"},
        headers=me,
    )
    assert r.status_code == 200, r.text
    changed = r.json()
    assert (changed["title"], changed["description"], changed["visibility"]) == (
        "Day",
        None,
        "unlisted",
    )
    assert changed["updated_at"] > made["updated_at"]
    assert detail(api, made["id"])["title"] == "Day"
    assert events(soundhive_services, "playlist.updated")[-1]["changed"] == [
        "description",
        "title",
        "visibility",
    ]

    r = api.delete(f"{PL}/{made['id']}", headers=me)
    assert r.status_code == 204 and r.content == b""
    problem(api.get(f"{PL}/{made['id']}", headers=me), 404, "PLAYLIST_NOT_FOUND")
    problem(api.delete(f"{PL}/{made['id']}", headers=me), 404, "PLAYLIST_NOT_FOUND")
    created = events(soundhive_services, "playlist.created")
    assert created == [{"playlist_id": made["id"], "owner_id": owner_id, "visibility": "public"}]
    assert [e["playlist_id"] for e in events(soundhive_services, "playlist.deleted")] == [
        made["id"]
    ]


@pytest.mark.parametrize(
    "body",
    [
        {"owner_id": str(uuid.uuid4())},
        {"track_count": 99},
        {"forked_from_id": str(uuid.uuid4())},
        {"id": str(uuid.uuid4())},
        {"created_at": "2020-01-01T00:00:00Z"},
        {"title": None},
        {"title": "   "},
        {"title": "x" * 201},
        {"title": "bad\u202eline"},
        {"visibility": "secret"},
        {"visibility": None},
        {"description": "d" * 2001},
    ],
)
def test_update_refuses_mass_assignment_and_invalid_fields(api: Any, body: dict[str, Any]) -> None:
    me = api.auth("pl-mass")
    made = create(api, me, title="Keep", description="same")
    r = api.patch(f"{PL}/{made['id']}", json={"title": "New", **body}, headers=me)
    err = problem(r, 422, "VALIDATION_FAILED")
    assert err["errors"] and all({"loc", "msg"} <= set(e) for e in err["errors"])
    after = detail(api, made["id"])
    assert {k: after[k] for k in FIELDS} == made  # nothing applied


def test_create_validates_and_refuses_foreign_fields(api: Any) -> None:
    me = api.auth("pl-create")
    for body in (
        {},
        {"title": ""},
        {"title": "ok", "owner_id": str(uuid.uuid4())},
        {"title": "ok", "track_count": 3},
        {"title": "ok", "forked_from_id": str(uuid.uuid4())},
        {"title": "ok", "visibility": "friends"},
    ):
        problem(api.post(PL, json=body, headers=me), 422, "VALIDATION_FAILED")
    private = create(api, me, title="p", visibility="private", description="  ")
    assert private["visibility"] == "private" and private["description"] is None
    problem(api.post(PL, json={"title": "x"}), 401, "UNAUTHORIZED")


def test_unknown_and_malformed_ids(api: Any) -> None:
    me = api.auth("pl-ids")
    problem(api.get(f"{PL}/{uuid.uuid4()}"), 404, "PLAYLIST_NOT_FOUND")
    problem(api.get(f"{PL}/not-a-uuid"), 422, "VALIDATION_FAILED")
    problem(
        api.patch(f"{PL}/{uuid.uuid4()}", json={"title": "x"}, headers=me),
        404,
        "PLAYLIST_NOT_FOUND",
    )
    problem(api.post(f"{PL}/{uuid.uuid4()}/fork", headers=me), 404, "PLAYLIST_NOT_FOUND")
    problem(api.get(f"/api/v1/users/{uuid.uuid4()}/playlists"), 404, "USER_NOT_FOUND")


# -- visibility and lists -------------------------------------------------------------------
def test_visibility_of_playlists(api: Any) -> None:
    owner, other, mod = api.auth("vis-o"), api.auth("vis-x"), api.auth("vis-m", "moderator")
    public = create(api, owner, title="pub")
    unlisted = create(api, owner, title="unl", visibility="unlisted")
    private = create(api, owner, title="priv", visibility="private")
    for who in ({}, other, owner, mod):
        assert detail(api, public["id"], who)["title"] == "pub"
        assert detail(api, unlisted["id"], who)["title"] == "unl"  # anyone with the link
    for who in ({}, other):
        problem(api.get(f"{PL}/{private['id']}", headers=who), 404, "PLAYLIST_NOT_FOUND")
    assert detail(api, private["id"], owner)["visibility"] == "private"
    assert detail(api, private["id"], mod)["visibility"] == "private"

    users = f"/api/v1/users/{public['owner_id']}/playlists"
    for who in ({}, other):
        assert [p["title"] for p in api.get(users, headers=who).json()["items"]] == ["pub"]
    for who in (owner, mod):
        titles = [p["title"] for p in api.get(users, headers=who).json()["items"]]
        assert titles == ["priv", "unl", "pub"]  # newest first


def test_user_playlists_paginate_newest_first(api: Any) -> None:
    me = api.auth("pager")
    made = [create(api, me, title=f"p{i}")["id"] for i in range(5)]
    url = f"/api/v1/users/{api.get('/api/v1/users/me', headers=me).json()['id']}/playlists"
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.get(url, params=params).json()
        seen += [p["id"] for p in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == made[::-1] and pages == 3
    problem(api.get(url, params={"cursor": "forged"}), 422, "INVALID_CURSOR")
    problem(api.get(url, params={"limit": 0}), 422, "VALIDATION_FAILED")


# -- entries --------------------------------------------------------------------------------
def test_add_move_remove_keep_positions_contiguous(api: Any, soundhive_services: Any) -> None:
    me = api.auth("dj")
    a, b, c, d = tracks(api, soundhive_services, me, 4, prefix="")
    pid = create(api, me)["id"]
    r = add(api, pid, a["id"], me)
    assert r.status_code == 201, r.text
    entry = r.json()
    assert entry["position"] == 0 and entry["track"]["id"] == a["id"] and entry["added_at"]
    assert add(api, pid, b["id"], me).json()["position"] == 1
    assert add(api, pid, c["id"], me, position=0).json()["position"] == 0
    assert add(api, pid, d["id"], me, position=2).json()["position"] == 2
    view = detail(api, pid)
    assert order(view) == [(0, "2"), (1, "0"), (2, "3"), (3, "1")]
    assert view["track_count"] == 4

    move = f"{PL}/{pid}/tracks"
    assert api.patch(f"{move}/{b['id']}", json={"position": 0}, headers=me).status_code == 204
    assert order(detail(api, pid)) == [(0, "1"), (1, "2"), (2, "0"), (3, "3")]
    assert api.patch(f"{move}/{b['id']}", json={"position": 3}, headers=me).status_code == 204
    assert order(detail(api, pid)) == [(0, "2"), (1, "0"), (2, "3"), (3, "1")]
    assert api.patch(f"{move}/{c['id']}", json={"position": 0}, headers=me).status_code == 204

    assert api.delete(f"{move}/{a['id']}", headers=me).status_code == 204
    view = detail(api, pid)
    assert order(view) == [(0, "2"), (1, "3"), (2, "1")] and view["track_count"] == 2 + 1
    assert stored(soundhive_services, pid) == [(0, c["id"]), (1, d["id"]), (2, b["id"])]
    assert [e["track_id"] for e in events(soundhive_services, "playlist.track_added")] == [
        a["id"],
        b["id"],
        c["id"],
        d["id"],
    ]


def test_entry_errors(api: Any, soundhive_services: Any) -> None:
    me = api.auth("errs")
    a, b, outsider = tracks(api, soundhive_services, me, 3)
    pid = create(api, me)["id"]
    add(api, pid, a["id"], me)
    add(api, pid, b["id"], me)
    problem(add(api, pid, a["id"], me), 409, "DUPLICATE_RESOURCE")
    err = problem(add(api, pid, outsider["id"], me, position=3), 422, "VALIDATION_FAILED")
    assert err["errors"] == [
        {"loc": ["body", "position"], "msg": "position must be between 0 and 2"}
    ]
    problem(add(api, pid, outsider["id"], me, position=-1), 422, "VALIDATION_FAILED")
    move = f"{PL}/{pid}/tracks"
    problem(
        api.patch(f"{move}/{a['id']}", json={"position": 2}, headers=me), 422, "VALIDATION_FAILED"
    )
    problem(api.patch(f"{move}/{a['id']}", json={}, headers=me), 422, "VALIDATION_FAILED")
    problem(
        api.patch(f"{move}/{outsider['id']}", json={"position": 0}, headers=me),
        404,
        "TRACK_NOT_IN_PLAYLIST",
    )
    problem(api.delete(f"{move}/{outsider['id']}", headers=me), 404, "TRACK_NOT_IN_PLAYLIST")
    problem(add(api, pid, str(uuid.uuid4()), me), 404, "TRACK_NOT_FOUND")
    assert stored(soundhive_services, pid) == [(0, a["id"]), (1, b["id"])]
    assert track_count(soundhive_services, pid) == 2


def test_add_needs_a_track_the_owner_may_see(api: Any, soundhive_services: Any) -> None:
    me, other = api.auth("curator"), api.auth("artist")
    (own_private,) = tracks(api, soundhive_services, me, 1, visibility="private")
    theirs_public, theirs_unlisted = tracks(api, soundhive_services, other, 2, prefix="pu")
    sql(
        soundhive_services,
        "UPDATE tracks SET visibility = 'unlisted' WHERE id = %s",
        theirs_unlisted["id"],
    )
    (theirs_private,) = tracks(api, soundhive_services, other, 1, visibility="private")
    pid = create(api, me)["id"]
    problem(add(api, pid, theirs_private["id"], me), 404, "TRACK_NOT_FOUND")
    for track in (own_private, theirs_public, theirs_unlisted):
        assert add(api, pid, track["id"], me).status_code == 201
    assert track_count(soundhive_services, pid) == 3


def test_others_do_not_see_tracks_they_may_not_see(api: Any, soundhive_services: Any) -> None:
    owner, other = api.auth("mixer"), api.auth("listener")
    mod = api.auth("mod", "moderator")
    first, hidden_later, last = tracks(api, soundhive_services, owner, 3)
    (secret,) = tracks(api, soundhive_services, owner, 1, visibility="private", prefix="s")
    pid = create(api, owner)["id"]
    for track in (first, secret, hidden_later, last):
        add(api, pid, track["id"], owner)
    sql(soundhive_services, "UPDATE tracks SET is_hidden = true WHERE id = %s", hidden_later["id"])

    mine = detail(api, pid, owner)
    assert order(mine) == [(0, "t0"), (1, "s0"), (2, "t1"), (3, "t2")]
    assert order(detail(api, pid, mod)) == order(mine)
    for who in ({}, other):
        view = detail(api, pid, who)
        # stored positions, invisible entries skipped; the count is the playlist's own
        assert order(view) == [(0, "t0"), (3, "t2")]
        assert view["track_count"] == 4
        assert all(e["track"]["visibility"] != "private" for e in view["tracks"])


async def test_banned_owners_playlists_are_hidden_from_others(api: Any, kernel: Any) -> None:
    owner, other = api.auth("shady"), api.auth("viewer")
    made = create(api, owner, title="gone soon")
    await ban(kernel, made["owner_id"])
    problem(api.get(f"{PL}/{made['id']}", headers=other), 404, "PLAYLIST_NOT_FOUND")
    problem(api.get(f"/api/v1/users/{made['owner_id']}/playlists"), 404, "USER_NOT_FOUND")
    assert detail(api, made["id"], owner)["title"] == "gone soon"  # the owner still reads
    assert detail(api, made["id"], api.auth("m", "moderator"))["title"] == "gone soon"
    problem(api.post(f"{PL}/{made['id']}/fork", headers=other), 404, "PLAYLIST_NOT_FOUND")


# -- fork -----------------------------------------------------------------------------------
def test_fork_copies_what_the_caller_may_see(api: Any, soundhive_services: Any) -> None:
    owner, fan = api.auth("fork-src"), api.auth("fork-fan")
    a, b, c = tracks(api, soundhive_services, owner, 3)
    (secret,) = tracks(api, soundhive_services, owner, 1, visibility="private", prefix="s")
    source = create(api, owner, title="Road trip", description="long drive", visibility="unlisted")
    for track in (a, secret, b, c):
        add(api, source["id"], track["id"], owner)

    r = api.post(f"{PL}/{source['id']}/fork", headers=fan)
    assert r.status_code == 201, r.text
    fork = r.json()
    assert r.headers["location"] == f"{PL}/{fork['id']}"
    fan_id = api.get("/api/v1/users/me", headers=fan).json()["id"]
    assert fork["owner_id"] == fan_id and fork["id"] != source["id"]
    assert fork["forked_from_id"] == source["id"]
    assert (fork["title"], fork["description"], fork["visibility"]) == (
        "Road trip",
        "long drive",
        "unlisted",
    )
    view = detail(api, fork["id"], fan)
    assert order(view) == [(0, "t0"), (1, "t1"), (2, "t2")]  # the private track is not copied
    assert view["track_count"] == 3
    assert events(soundhive_services, "playlist.forked") == [
        {
            "playlist_id": fork["id"],
            "owner_id": fan_id,
            "source_id": source["id"],
            "source_owner_id": source["owner_id"],
        }
    ]
    # the copy is independent of its source
    add(api, source["id"], tracks(api, soundhive_services, owner, 1, prefix="n")[0]["id"], owner)
    assert detail(api, fork["id"])["track_count"] == 3

    custom = api.post(
        f"{PL}/{source['id']}/fork", json={"title": "Mine", "visibility": "private"}, headers=fan
    ).json()
    assert (custom["title"], custom["visibility"], custom["description"]) == (
        "Mine",
        "private",
        "long drive",
    )
    problem(
        api.post(f"{PL}/{source['id']}/fork", json={"owner_id": fan_id}, headers=fan),
        422,
        "VALIDATION_FAILED",
    )

    own = api.post(f"{PL}/{source['id']}/fork", headers=owner).json()
    assert detail(api, own["id"], owner)["track_count"] == 5  # the owner sees the private one

    assert api.delete(f"{PL}/{source['id']}", headers=owner).status_code == 204
    assert detail(api, fork["id"])["forked_from_id"] is None


def test_private_playlist_cannot_be_forked_by_others(api: Any) -> None:
    owner = api.auth("priv-owner")
    private = create(api, owner, title="diary", visibility="private")
    problem(
        api.post(f"{PL}/{private['id']}/fork", headers=api.auth("snoop")), 404, "PLAYLIST_NOT_FOUND"
    )
    mod = api.auth("priv-mod", "moderator")
    problem(api.post(f"{PL}/{private['id']}/fork", headers=mod), 403, "FORBIDDEN")
    mine = api.post(f"{PL}/{private['id']}/fork", headers=owner)
    assert mine.status_code == 201 and mine.json()["visibility"] == "private"


# -- ownership and bans, one test per mutating endpoint ---------------------------------------
def _calls(pid: str, tid: str) -> dict[str, tuple[str, str, dict[str, Any] | None]]:
    return {
        "update": ("PATCH", f"{PL}/{pid}", {"title": "hijacked"}),
        "delete": ("DELETE", f"{PL}/{pid}", None),
        "add": ("POST", f"{PL}/{pid}/tracks", {"track_id": tid}),
        "remove": ("DELETE", f"{PL}/{pid}/tracks/{tid}", None),
        "move": ("PATCH", f"{PL}/{pid}/tracks/{tid}", {"position": 0}),
    }


@pytest.fixture
def owned(api: Any, soundhive_services: Any) -> dict[str, Any]:
    """A public and a private playlist of one owner, each holding two public tracks."""
    owner = api.auth("the-owner")
    a, b = tracks(api, soundhive_services, owner, 2)
    lists = {}
    for visibility in ("public", "private"):
        pid = create(api, owner, visibility=visibility)["id"]
        add(api, pid, a["id"], owner)
        add(api, pid, b["id"], owner)
        lists[visibility] = pid
    return {"owner": owner, "lists": lists, "track": b["id"], "spare": a["id"]}


def _unchanged(api: Any, services: Any, owned: dict[str, Any], pid: str) -> None:
    view = detail(api, pid, owned["owner"])
    assert view["title"] == "Mix" and view["track_count"] == 2
    assert [t for _, t in stored(services, pid)] == [owned["spare"], owned["track"]]


@pytest.mark.parametrize("endpoint", ["update", "delete", "add", "remove", "move"])
def test_non_owner_cannot_change_a_playlist(
    api: Any, soundhive_services: Any, owned: dict[str, Any], endpoint: str
) -> None:
    other, mod = api.auth("intruder"), api.auth("a-mod", "moderator")
    (their_track,) = tracks(api, soundhive_services, other, 1, prefix="x")
    for visibility, who, status, code in (
        ("public", other, 403, "NOT_PLAYLIST_OWNER"),
        ("private", other, 404, "PLAYLIST_NOT_FOUND"),
        ("public", mod, 403, "NOT_PLAYLIST_OWNER"),
        ("private", mod, 403, "NOT_PLAYLIST_OWNER"),
    ):
        pid = owned["lists"][visibility]
        tid = their_track["id"] if endpoint == "add" else owned["track"]
        method, url, body = _calls(pid, tid)[endpoint]
        problem(api.request(method, url, json=body, headers=who), status, code)
        _unchanged(api, soundhive_services, owned, pid)
    method, url, body = _calls(owned["lists"]["public"], owned["track"])[endpoint]
    problem(api.request(method, url, json=body), 401, "UNAUTHORIZED")


@pytest.mark.parametrize(
    "endpoint", ["create", "fork", "update", "delete", "add", "remove", "move"]
)
async def test_banned_account_cannot_write(
    api: Any, soundhive_services: Any, kernel: Any, owned: dict[str, Any], endpoint: str
) -> None:
    pid = owned["lists"]["public"]
    (spare,) = tracks(api, soundhive_services, owned["owner"], 1, prefix="z")
    await ban(kernel, detail(api, pid, owned["owner"])["owner_id"])
    calls = {
        **_calls(pid, spare["id"] if endpoint == "add" else owned["track"]),
        "create": ("POST", PL, {"title": "new"}),
        "fork": ("POST", f"{PL}/{pid}/fork", None),
    }
    method, url, body = calls[endpoint]
    err = problem(
        api.request(method, url, json=body, headers=owned["owner"]), 403, "ACCOUNT_BANNED"
    )
    assert "banned" in err["detail"]
    _unchanged(api, soundhive_services, owned, pid)
    assert sql(soundhive_services, "SELECT count(*) FROM playlists") == [(2,)]


# -- concurrency ----------------------------------------------------------------------------
def _client_call(
    api: Any, method: str, url: str, headers: dict[str, str], body: Any = None
) -> Callable[[], httpx.Response]:
    """A call on its own connection, so the requests really overlap on the server."""

    def call() -> httpx.Response:
        with httpx.Client(base_url=str(api.base_url), timeout=30) as client:
            return client.request(method, url, json=body, headers=headers)

    return call


def test_twenty_concurrent_adds_get_positions_0_to_19(api: Any, soundhive_services: Any) -> None:
    me = api.auth("rush")
    made = tracks(api, soundhive_services, me, 20)
    pid = create(api, me)["id"]
    responses = parallel(
        [_client_call(api, "POST", f"{PL}/{pid}/tracks", me, {"track_id": t["id"]}) for t in made]
    )
    assert [r.status_code for r in responses] == [201] * 20, [r.text for r in responses]
    assert sorted(r.json()["position"] for r in responses) == list(range(20))
    rows = stored(soundhive_services, pid)
    assert [p for p, _ in rows] == list(range(20))
    assert {t for _, t in rows} == {t["id"] for t in made}
    assert track_count(soundhive_services, pid) == 20
    view = detail(api, pid)
    assert [e["position"] for e in view["tracks"]] == list(range(20))
    assert view["track_count"] == 20

    # everyone racing for the front: each insert pushes the others down, none is lost
    front = create(api, me, title="front")["id"]
    responses = parallel(
        [
            _client_call(
                api, "POST", f"{PL}/{front}/tracks", me, {"track_id": t["id"], "position": 0}
            )
            for t in made[:10]
        ]
    )
    assert [r.status_code for r in responses] == [201] * 10
    assert [p for p, _ in stored(soundhive_services, front)] == list(range(10))
    # the same track added twice at once: exactly one wins
    twice = parallel(
        [
            _client_call(api, "POST", f"{PL}/{front}/tracks", me, {"track_id": made[15]["id"]})
            for _ in range(4)
        ]
    )
    assert sorted(r.status_code for r in twice) == [201, 409, 409, 409]
    assert track_count(soundhive_services, front) == 11


def test_concurrent_moves_and_removes_stay_contiguous(api: Any, soundhive_services: Any) -> None:
    me = api.auth("shuffler")
    made = tracks(api, soundhive_services, me, 20)
    pid = create(api, me)["id"]
    for t in made:
        assert add(api, pid, t["id"], me).status_code == 201
    rng = random.Random(7)
    removed = [t["id"] for t in made[:5]]
    kept = [t["id"] for t in made[5:]]
    calls = [_client_call(api, "DELETE", f"{PL}/{pid}/tracks/{tid}", me) for tid in removed]
    calls += [
        _client_call(
            api,
            "PATCH",
            f"{PL}/{pid}/tracks/{rng.choice(kept)}",
            me,
            {"position": rng.randrange(15)},
        )
        for _ in range(15)
    ]
    rng.shuffle(calls)
    responses = parallel(calls)
    assert [r.status_code for r in responses] == [204] * 20, [r.text for r in responses]
    rows = stored(soundhive_services, pid)
    assert [p for p, _ in rows] == list(range(15))
    assert {t for _, t in rows} == set(kept)
    assert track_count(soundhive_services, pid) == 15
    assert [e["position"] for e in detail(api, pid)["tracks"]] == list(range(15))


# -- size limit -----------------------------------------------------------------------------
def test_size_limit_is_a_clear_error(
    api: Any, soundhive_services: Any, make_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.app import create_app
    from core.kernel import Kernel
    from core.testing.live import LiveServer
    from core.testing.plugin import Api

    assert Kernel(make_settings()).skill_settings("playlist-management").max_tracks == 1000
    monkeypatch.setenv("SOUNDHIVE_PLAYLIST_MAX_TRACKS", "3")
    me = api.auth("hoarder")
    made = tracks(api, soundhive_services, me, 4)
    with LiveServer(create_app(make_settings())) as small, Api(small.url, api.jwks) as client:
        pid = create(client, me)["id"]
        for t in made[:3]:
            assert add(client, pid, t["id"], me).status_code == 201
        err = problem(add(client, pid, made[3]["id"], me), 422, "PLAYLIST_FULL")
        assert "3" in err["detail"]
        problem(add(client, pid, made[3]["id"], me, position=0), 422, "PLAYLIST_FULL")
        assert track_count(soundhive_services, pid) == 3
        # after a removal there is room again
        assert client.delete(f"{PL}/{pid}/tracks/{made[0]['id']}", headers=me).status_code == 204
        assert add(client, pid, made[3]["id"], me).status_code == 201
        # a playlist grown under a higher limit cannot be forked beyond the lower one
        big = create(api, me, title="big")["id"]
        for t in made:
            add(api, big, t["id"], me)
        problem(client.post(f"{PL}/{big}/fork", headers=me), 422, "PLAYLIST_FULL")
        assert client.post(f"{PL}/{pid}/fork", headers=me).status_code == 201


# -- track deletion -------------------------------------------------------------------------
def _playlist_with(api: Any, services: Any, who: str, n: int) -> tuple[Any, str, list[Any]]:
    me = api.auth(who)
    made = tracks(api, services, me, n)
    pid = create(api, me)["id"]
    for t in made:
        add(api, pid, t["id"], me)
    return me, pid, made


async def test_deleting_a_track_marks_and_repair_renumbers(
    api: Any, soundhive_services: Any, kernel: Any
) -> None:
    from skills.playlist_management import tasks

    me, pid, made = _playlist_with(api, soundhive_services, "del-artist", 4)
    other_pid = create(api, me, title="other")["id"]
    add(api, other_pid, made[1]["id"], me)
    assert api.delete(f"/api/v1/tracks/{made[1]['id']}", headers=me).status_code == 204
    # the cascade removed the entries and marked both playlists (and nothing else)
    assert [p for p, _ in stored(soundhive_services, pid)] == [0, 2, 3]
    marked = sql(soundhive_services, "SELECT playlist_id::text FROM playlist_repairs")
    assert sorted(m[0] for m in marked) == sorted([pid, other_pid])
    # removing an entry yourself never marks
    api.delete(f"{PL}/{pid}/tracks/{made[3]['id']}", headers=me)
    assert [p for p, _ in stored(soundhive_services, pid)] == [0, 1]  # the write compacted

    await tasks.repair(kernel, id="e", type="track.deleted", payload={}, occurred_at="")
    assert stored(soundhive_services, pid) == [(0, made[0]["id"]), (1, made[2]["id"])]
    assert track_count(soundhive_services, pid) == 2
    assert track_count(soundhive_services, other_pid) == 0
    assert sql(soundhive_services, "SELECT count(*) FROM playlist_repairs") == [(0,)]
    await tasks.repair(kernel)  # idempotent: nothing left to do
    assert track_count(soundhive_services, pid) == 2


def test_writes_compact_a_playlist_a_deletion_left_gapped(
    api: Any, soundhive_services: Any
) -> None:
    me, pid, made = _playlist_with(api, soundhive_services, "gap-artist", 4)
    assert api.delete(f"/api/v1/tracks/{made[0]['id']}", headers=me).status_code == 204
    (extra,) = tracks(api, soundhive_services, me, 1, prefix="x")
    r = add(api, pid, extra["id"], me, position=3)  # 3 entries left: 3 means last
    assert r.status_code == 201, r.text
    assert [t for _, t in stored(soundhive_services, pid)] == [
        made[1]["id"],
        made[2]["id"],
        made[3]["id"],
        extra["id"],
    ]
    assert [p for p, _ in stored(soundhive_services, pid)] == list(range(4))
    assert track_count(soundhive_services, pid) == 4


async def test_audit_repairs_any_inconsistency(
    api: Any, soundhive_services: Any, kernel: Any
) -> None:
    from skills.playlist_management import tasks

    _, pid, made = _playlist_with(api, soundhive_services, "audit", 3)
    sql(soundhive_services, "UPDATE playlists SET track_count = 9 WHERE id = %s", pid)
    sql(
        soundhive_services,
        "UPDATE playlist_tracks SET position = position * 10 WHERE playlist_id = %s",
        pid,
    )
    await tasks.audit(kernel)
    assert stored(soundhive_services, pid) == [(i, t["id"]) for i, t in enumerate(made)]
    assert track_count(soundhive_services, pid) == 3


@pytest.mark.integration
def test_track_deletion_is_repaired_by_the_worker(
    api: Any, soundhive_services: Any, real_worker: Any
) -> None:
    me, pid, made = _playlist_with(api, soundhive_services, "worker-artist", 5)
    assert api.delete(f"/api/v1/tracks/{made[2]['id']}", headers=me).status_code == 204

    def repaired() -> bool:
        view = detail(api, pid)
        return view["track_count"] == 4 and [e["position"] for e in view["tracks"]] == [0, 1, 2, 3]

    wait_for(repaired, timeout=20)
    assert [e["track"]["id"] for e in detail(api, pid)["tracks"]] == [
        t["id"] for i, t in enumerate(made) if i != 2
    ]
    assert sql(soundhive_services, "SELECT count(*) FROM playlist_repairs") == [(0,)]


def test_openapi_documents_the_routes(api: Any) -> None:
    spec = api.get("/openapi.json").json()
    expected = {
        ("/api/v1/playlists", "post"),
        ("/api/v1/playlists/{playlist_id}", "get"),
        ("/api/v1/playlists/{playlist_id}", "patch"),
        ("/api/v1/playlists/{playlist_id}", "delete"),
        ("/api/v1/users/{user_id}/playlists", "get"),
        ("/api/v1/playlists/{playlist_id}/tracks", "post"),
        ("/api/v1/playlists/{playlist_id}/tracks/{track_id}", "delete"),
        ("/api/v1/playlists/{playlist_id}/tracks/{track_id}", "patch"),
        ("/api/v1/playlists/{playlist_id}/fork", "post"),
    }
    for path, method in expected:
        assert spec["paths"][path][method]["tags"] == ["playlist-management"], (path, method)
    schema = spec["components"]["schemas"]["PlaylistDetail"]
    assert {"tracks", "forked_from_id", "track_count"} <= set(schema["properties"])
