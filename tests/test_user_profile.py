"""user-profile over real HTTP, on the real PostgreSQL and Redis of the test session.

Writes that only other skills make (ban, counters) go through ``skills.user_profile.api`` on a
kernel of the test's own event loop, exactly as a dependent skill would call them.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import psycopg
import pytest
import redis

from core.testing.plugin import change_cached
from core.testing.services import plain_url

PROBLEM = "application/problem+json"
ME = "/api/v1/users/me"
PUBLIC_FIELDS = {
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
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


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
def rds(soundhive_services: Any) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(soundhive_services.redis_url)
    yield client
    client.close()


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


def me(api: Any, sub: str, **claims: Any) -> dict[str, Any]:
    response = api.get(ME, headers=api.auth(sub, **claims))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def patch(api: Any, sub: str, body: dict[str, Any], *roles: str) -> httpx.Response:
    response: httpx.Response = api.patch(ME, json=body, headers=api.auth(sub, *roles))
    return response


def events(sql: Callable[..., Any], event_type: str) -> list[dict[str, Any]]:
    rows = sql("SELECT payload FROM core_outbox WHERE type = %s ORDER BY occurred_at", event_type)
    return [row[0] for row in rows]


def cache_key(kind: str, value: object) -> str:
    return f"sh:user-profile:{kind}:{value}"


# -- authentication and provisioning --------------------------------------------------------
def test_missing_or_bad_token_is_401_problem(api: Any) -> None:
    for method in ("GET", "PATCH", "DELETE"):
        body = problem(
            api.request(method, ME, json={} if method == "PATCH" else None), 401, "UNAUTHORIZED"
        )
        assert body["instance"] == ME
    problem(api.get(ME, headers={"Authorization": "Bearer not-a-jwt"}), 401, "UNAUTHORIZED")


def test_oversized_subject_gets_no_account(api: Any, sql: Any) -> None:
    problem(api.get(ME, headers=api.auth("s" * 256)), 403, "FORBIDDEN")
    assert sql("SELECT count(*) FROM user_profiles") == [(0,)]


def test_first_call_provisions_profile_from_token(api: Any, sql: Any) -> None:
    first = me(api, "auth|alice", email="Alice.Smith+music@Example.com")
    assert set(first) == PUBLIC_FIELDS | {"email", "is_banned"}
    assert first["handle"] == "alice.smith"
    assert first["display_name"] == "alice.smith"
    assert first["email"] == "Alice.Smith+music@Example.com"
    assert first["is_banned"] is False and first["bio"] is None and first["avatar_url"] is None
    assert (first["followers_count"], first["following_count"], first["tracks_count"]) == (0, 0, 0)
    assert RFC3339_UTC.match(first["created_at"]) and RFC3339_UTC.match(first["updated_at"])
    uuid.UUID(first["id"])

    again = me(api, "auth|alice", email="alice@new.example")
    assert again["id"] == first["id"] and again["handle"] == "alice.smith"
    assert again["email"] == "alice@new.example"  # the token is the source of truth
    assert sql("SELECT count(*) FROM user_profiles WHERE sub = 'auth|alice'") == [(1,)]
    assert events(sql, "user.created") == [{"user_id": first["id"], "handle": "alice.smith"}]


def test_default_handles_without_usable_email(api: Any) -> None:
    assert re.fullmatch(r"user-[0-9a-f]{8}", me(api, "no-email")["handle"])
    assert re.fullmatch(r"user-[0-9a-f]{8}", me(api, "reserved", email="admin@x.io")["handle"])
    assert re.fullmatch(r"user-[0-9a-f]{8}", me(api, "short", email="jo@x.io")["handle"])
    assert re.fullmatch(r"user-[0-9a-f]{8}", me(api, "intl", email="jürgen@x.io")["handle"])
    assert me(api, "odd", email="--Mr.Smith!--@x.io")["handle"] == "mr.smith"
    nova1 = me(api, "nova-1", email="nova@a.io")
    nova2 = me(api, "nova-2", email="NOVA@b.io")
    assert nova1["handle"] == "nova"
    assert re.fullmatch(r"nova_[0-9a-f]{4}", nova2["handle"])
    assert nova2["display_name"] == nova2["handle"]


def test_twenty_concurrent_first_calls_create_exactly_one_profile(
    api: Any, live_server: Any, sql: Any
) -> None:
    headers = api.auth("racer", email="racer@example.com")
    barrier = threading.Barrier(20)
    results: list[tuple[int, str]] = []
    lock = threading.Lock()

    def call() -> None:
        with httpx.Client(base_url=live_server.url, timeout=30) as client:
            barrier.wait()
            response = client.get(ME, headers=headers)
            with lock:
                results.append((response.status_code, response.json().get("id", response.text)))

    threads = [threading.Thread(target=call) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert len(results) == 20
    assert {status for status, _ in results} == {200}
    assert len({profile_id for _, profile_id in results}) == 1
    assert sql("SELECT count(*) FROM user_profiles WHERE sub = 'racer'") == [(1,)]
    assert len(events(sql, "user.created")) == 1


# -- PATCH /users/me ------------------------------------------------------------------------
def test_patch_me_changes_only_what_was_sent(api: Any, sql: Any) -> None:
    before = me(api, "bob", email="bob@example.com")
    response = patch(
        api,
        "bob",
        {
            "handle": "DJ_Bob",
            "display_name": "  DJ Bob 🎧  ",
            "bio": "Line one\nline\ttwo",
            "avatar_url": "https://cdn.example.com/a/bob.png?size=256",
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == before["id"] and body["email"] == "bob@example.com"
    assert body["handle"] == "dj_bob"
    assert body["display_name"] == "DJ Bob 🎧"
    assert body["bio"] == "Line one\nline\ttwo"
    assert body["avatar_url"] == "https://cdn.example.com/a/bob.png?size=256"
    assert body["created_at"] == before["created_at"] and body["updated_at"] > before["updated_at"]
    assert me(api, "bob") == body

    public = api.get(f"/api/v1/users/{before['id']}").json()  # anonymous reader
    assert set(public) == PUBLIC_FIELDS and public["handle"] == "dj_bob"

    # Partial update keeps the rest; null clears bio/avatar; an empty PATCH changes nothing.
    cleared = patch(api, "bob", {"bio": None, "avatar_url": None}).json()
    assert cleared["bio"] is None and cleared["avatar_url"] is None
    assert cleared["handle"] == "dj_bob" and cleared["display_name"] == "DJ Bob 🎧"
    unchanged = patch(api, "bob", {}).json()
    assert unchanged == cleared

    updates = events(sql, "user.updated")
    assert updates == [
        {
            "user_id": before["id"],
            "handle": "dj_bob",
            "changed": ["avatar_url", "bio", "display_name", "handle"],
        },
        {"user_id": before["id"], "handle": "dj_bob", "changed": ["avatar_url", "bio"]},
    ]


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        ({"handle": "ab"}, "handle", "3-30"),
        ({"handle": "a" * 31}, "handle", "3-30"),
        ({"handle": "-abc"}, "handle", "start and end"),
        ({"handle": "abc."}, "handle", "start and end"),
        ({"handle": "has space"}, "handle", "may contain only"),
        ({"handle": "émile"}, "handle", "may contain only"),
        ({"handle": "a/b/c"}, "handle", "may contain only"),
        ({"handle": "Admin"}, "handle", "reserved"),
        ({"handle": "me"}, "handle", "3-30"),
        ({"handle": "support"}, "handle", "reserved"),
        ({"handle": "the_soundhive_team"}, "handle", "reserved"),
        ({"handle": None}, "handle", "string"),
        ({"handle": 42}, "handle", "string"),
        ({"display_name": ""}, "display_name", "blank"),
        ({"display_name": "   "}, "display_name", "blank"),
        ({"display_name": "x" * 81}, "display_name", "80"),
        ({"display_name": "bad\x00name"}, "display_name", "control"),
        ({"display_name": "new\nline"}, "display_name", "control"),
        ({"display_name": "evil\u202etxt.exe"}, "display_name", "control"),
        ({"display_name": None}, "display_name", "string"),
        ({"bio": "b" * 501}, "bio", "500"),
        ({"bio": "bell\x07"}, "bio", "control"),
        ({"avatar_url": "ftp://example.com/a.png"}, "avatar_url", "http"),
        ({"avatar_url": "javascript:alert(1)"}, "avatar_url", "http"),
        ({"avatar_url": "/relative/a.png"}, "avatar_url", "http"),
        ({"avatar_url": "https:///no-host"}, "avatar_url", "http"),
        ({"avatar_url": "https://example.com/a b.png"}, "avatar_url", "whitespace"),
        ({"avatar_url": "https://example.com/" + "a" * 2040}, "avatar_url", "2048"),
    ],
)
def test_patch_validation_is_422_problem(
    api: Any, body: dict[str, Any], field: str, fragment: str
) -> None:
    before = me(api, "validator")
    problem_body = problem(patch(api, "validator", body), 422, "VALIDATION_FAILED")
    errors = problem_body["errors"]
    assert [e["loc"] for e in errors] == [["body", field]], errors
    assert fragment in errors[0]["msg"], errors
    assert me(api, "validator") == before


def test_patch_boundaries_are_accepted(api: Any) -> None:
    me(api, "edge")
    ok = patch(
        api,
        "edge",
        {
            "handle": "_a" + "b" * 27 + "_",
            "display_name": "x" * 80,
            "bio": "y" * 500,
            "avatar_url": "http://example.com/" + "a" * (2048 - 19),
        },
    )
    assert ok.status_code == 200, ok.text
    assert len(ok.json()["handle"]) == 30 and len(ok.json()["avatar_url"]) == 2048
    assert patch(api, "edge", {"handle": "a.b-c_9"}).json()["handle"] == "a.b-c_9"


def test_mass_assignment_is_refused_and_nothing_changes(api: Any, sql: Any) -> None:
    before = me(api, "mallory", email="mallory@example.com")
    forged = {
        "followers_count": 10_000,
        "following_count": 5,
        "tracks_count": 7,
        "id": str(uuid.uuid4()),
        "sub": "someone-else",
        "is_banned": False,
        "email": "ceo@soundhive.example",
        "deleted_at": None,
        "created_at": "2000-01-01T00:00:00Z",
        "display_name": "Mallory",
    }
    body = problem(patch(api, "mallory", forged), 422, "VALIDATION_FAILED")
    refused = {e["loc"][-1] for e in body["errors"]}
    assert refused == set(forged) - {"display_name"}
    assert me(api, "mallory") == before
    row = sql(
        "SELECT sub, followers_count, tracks_count, is_banned, email FROM user_profiles "
        "WHERE id = %s",
        before["id"],
    )
    assert row == [("mallory", 0, 0, False, "mallory@example.com")]
    assert events(sql, "user.updated") == []


def test_duplicate_handle_is_409_case_insensitively(api: Any) -> None:
    me(api, "owner")
    assert patch(api, "owner", {"handle": "Taken.Name"}).json()["handle"] == "taken.name"
    me(api, "rival")
    for attempt in ("taken.name", "TAKEN.NAME", "Taken.Name"):
        body = problem(patch(api, "rival", {"handle": attempt}), 409, "DUPLICATE_RESOURCE")
        assert "already taken" in body["detail"]
    # Re-sending one's own handle in another case is not a conflict.
    assert patch(api, "owner", {"handle": "TAKEN.name"}).status_code == 200


def test_concurrent_claims_of_one_handle_give_one_winner_and_409s(
    api: Any, live_server: Any
) -> None:
    subs = [f"claimer-{i}" for i in range(8)]
    headers = {sub: api.auth(sub) for sub in subs}
    for sub in subs:
        me(api, sub)
    barrier = threading.Barrier(len(subs))
    statuses: list[int] = []

    def claim(sub: str) -> None:
        with httpx.Client(base_url=live_server.url, timeout=30) as client:
            barrier.wait()
            statuses.append(
                client.patch(ME, json={"handle": "hot_name"}, headers=headers[sub]).status_code
            )

    threads = [threading.Thread(target=claim, args=(sub,)) for sub in subs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(statuses) == [200] + [409] * (len(subs) - 1)
    winner = api.get("/api/v1/users/by-handle/hot_name").json()
    assert winner["handle"] == "hot_name"


# -- reads ----------------------------------------------------------------------------------
def test_get_by_id_and_by_handle(api: Any) -> None:
    carol = me(api, "carol", email="carol@example.com")
    patch(api, "carol", {"handle": "Carol_Beats", "bio": "hi"})
    viewer = api.auth("dave")
    by_id = api.get(f"/api/v1/users/{carol['id']}", headers=viewer)
    assert by_id.status_code == 200
    body = by_id.json()
    assert set(body) == PUBLIC_FIELDS  # no email, no sub, no ban state
    assert body["id"] == carol["id"] and body["handle"] == "carol_beats" and body["bio"] == "hi"
    for spelling in ("carol_beats", "CAROL_BEATS", "Carol_Beats"):
        response = api.get(f"/api/v1/users/by-handle/{spelling}")
        assert response.status_code == 200 and response.json() == body


def test_unknown_users_are_404_problem_and_bad_ids_422(api: Any) -> None:
    missing = uuid.uuid4()
    body = problem(api.get(f"/api/v1/users/{missing}"), 404, "USER_NOT_FOUND")
    assert str(missing) in body["detail"]
    problem(api.get("/api/v1/users/by-handle/nobody_here"), 404, "USER_NOT_FOUND")
    problem(api.get("/api/v1/users/by-handle/" + "x" * 300), 404, "USER_NOT_FOUND")
    problem(api.get("/api/v1/users/by-handle/%C3%A9mile"), 404, "USER_NOT_FOUND")
    body = problem(api.get("/api/v1/users/not-a-uuid"), 422, "VALIDATION_FAILED")
    assert body["errors"][0]["loc"] == ["path", "user_id"]


# -- soft delete ----------------------------------------------------------------------------
def test_soft_delete_hides_profile_and_locks_account(api: Any, sql: Any, rds: Any) -> None:
    erin = me(api, "erin")
    patch(api, "erin", {"handle": "erin_gone"})
    assert api.get(f"/api/v1/users/{erin['id']}").status_code == 200  # cached now
    assert rds.exists(cache_key("id", erin["id"]))

    response = api.delete(ME, headers=api.auth("erin"))
    assert response.status_code == 204 and response.content == b""
    assert not rds.exists(cache_key("id", erin["id"]))

    for path in (f"/api/v1/users/{erin['id']}", "/api/v1/users/by-handle/erin_gone"):
        problem(api.get(path), 404, "USER_NOT_FOUND")
        problem(api.get(path, headers=api.auth("frank")), 404, "USER_NOT_FOUND")
        problem(api.get(path, headers=api.auth("mod", "moderator")), 404, "USER_NOT_FOUND")
    problem(api.get(ME, headers=api.auth("erin")), 403, "ACCOUNT_DELETED")
    problem(patch(api, "erin", {"bio": "back"}), 403, "ACCOUNT_DELETED")
    problem(api.delete(ME, headers=api.auth("erin")), 403, "ACCOUNT_DELETED")

    # The row stays (soft delete), and its handle stays reserved against impersonation.
    assert sql("SELECT deleted_at IS NOT NULL FROM user_profiles WHERE id = %s", erin["id"]) == [
        (True,)
    ]
    me(api, "imposter")
    problem(patch(api, "imposter", {"handle": "erin_gone"}), 409, "DUPLICATE_RESOURCE")
    assert events(sql, "user.deleted") == [{"user_id": erin["id"], "handle": "erin_gone"}]


# -- bans (through the public API, as admin-moderation will) ---------------------------------
async def test_banned_profile_is_hidden_but_moderators_still_see_it(
    api: Any, kernel: Any, sql: Any
) -> None:
    from skills.user_profile import api as profiles

    gina = me(api, "gina")
    patch(api, "gina", {"handle": "gina_g"})
    gina_id = uuid.UUID(gina["id"])
    url = f"/api/v1/users/{gina_id}"
    assert api.get(url).status_code == 200  # warms the cache that the ban must invalidate
    assert api.get("/api/v1/users/by-handle/gina_g").status_code == 200

    async with kernel.db.session() as session, profiles.transaction(kernel, session):
        assert await profiles.set_banned(session, gina_id, True) is True
        assert await profiles.set_banned(session, gina_id, True) is False  # already banned
    async with kernel.db.session() as session:
        assert await profiles.is_banned(session, gina_id) is True
        assert await profiles.get_profile(session, gina_id) is None
        hidden = await profiles.get_profile(session, gina_id, include_hidden=True)
        assert hidden is not None and hidden.handle == "gina_g"

    for path in (url, "/api/v1/users/by-handle/gina_g"):
        problem(api.get(path), 404, "USER_NOT_FOUND")
        problem(api.get(path, headers=api.auth("henry")), 404, "USER_NOT_FOUND")
        seen = api.get(path, headers=api.auth("mod", "moderator"))
        assert seen.status_code == 200 and seen.json()["handle"] == "gina_g"
        assert api.get(path, headers=api.auth("root", "admin")).status_code == 200
        assert api.get(path, headers=api.auth("gina")).status_code == 200  # the owner

    own = me(api, "gina")
    assert own["is_banned"] is True
    body = problem(patch(api, "gina", {"bio": "let me out"}), 403, "ACCOUNT_BANNED")
    assert "banned" in body["detail"]
    problem(api.delete(ME, headers=api.auth("gina")), 403, "ACCOUNT_BANNED")
    assert sql(
        "SELECT banned_at IS NOT NULL, bio FROM user_profiles WHERE id = %s", gina["id"]
    ) == [(True, None)]

    async with kernel.db.session() as session, profiles.transaction(kernel, session):
        assert await profiles.set_banned(session, gina_id, False) is True
    assert api.get(url).json()["handle"] == "gina_g"
    assert patch(api, "gina", {"bio": "reformed"}).status_code == 200
    assert [e["user_id"] for e in events(sql, "user.banned")] == [gina["id"]]
    assert [e["user_id"] for e in events(sql, "user.unbanned")] == [gina["id"]]

    async with kernel.db.session() as session, profiles.transaction(kernel, session):
        with pytest.raises(profiles.UserNotFound):
            await profiles.set_banned(session, uuid.uuid4(), True)


async def test_public_read_helpers_filter_hidden_profiles(api: Any, kernel: Any) -> None:
    from core.auth import Principal
    from skills.user_profile import api as profiles

    ids = {name: uuid.UUID(me(api, name)["id"]) for name in ("ivy", "jack", "kim")}
    api.delete(ME, headers=api.auth("kim"))
    async with kernel.db.session() as session, profiles.transaction(kernel, session):
        await profiles.set_banned(session, ids["jack"], True)

    moderator = Principal(sub="mod", roles=frozenset({"moderator"}))
    unknown = uuid.uuid4()
    async with kernel.db.session() as session:
        everyone = [*ids.values(), unknown]
        assert await profiles.visible_profile_ids(session, everyone) == {ids["ivy"]}
        assert await profiles.visible_profile_ids(session, everyone, viewer=moderator) == {
            ids["ivy"],
            ids["jack"],
        }
        found = await profiles.get_profiles(session, everyone)
        assert list(found) == [ids["ivy"]] and found[ids["ivy"]].handle.startswith("user-")
        assert set(await profiles.get_profiles(session, everyone, viewer=moderator)) == {
            ids["ivy"],
            ids["jack"],
        }
        assert await profiles.is_banned(session, unknown) is False
        # visible_condition() lets other skills filter their own joins in SQL.
        from sqlalchemy import select

        from skills.user_profile.api import UserProfile, visible_condition

        stmt = select(UserProfile.id).where(visible_condition(include_banned=True))
        assert set((await session.scalars(stmt)).all()) == {ids["ivy"], ids["jack"]}


# -- counters -------------------------------------------------------------------------------
async def test_adjust_counters_is_atomic_floored_and_invalidates(
    api: Any, kernel: Any, sql: Any
) -> None:
    from skills.user_profile import api as profiles

    lena = me(api, "lena")
    lena_id = uuid.UUID(lena["id"])
    url = f"/api/v1/users/{lena_id}"
    assert api.get(url).json()["followers_count"] == 0  # cached with 0

    async def follow() -> None:
        async with kernel.db.session() as session, profiles.transaction(kernel, session):
            assert await profiles.adjust_counters(session, lena_id, followers=1, tracks=2)

    await asyncio.gather(*(follow() for _ in range(10)))
    counts = api.get(url).json()
    assert (counts["followers_count"], counts["tracks_count"]) == (10, 20)

    async with kernel.db.session() as session, profiles.transaction(kernel, session):
        await profiles.adjust_counters(session, lena_id, followers=-3, following=-5)
    counts = api.get(url).json()
    assert (counts["followers_count"], counts["following_count"]) == (7, 0)  # never below 0

    # A failed transaction leaves the counters (and the cache) alone.
    with pytest.raises(RuntimeError):
        async with kernel.db.session() as session, profiles.transaction(kernel, session):
            await profiles.adjust_counters(session, lena_id, followers=100)
            raise RuntimeError("caller failed")
    assert api.get(url).json()["followers_count"] == 7

    # Callers that commit themselves invalidate explicitly.
    async with kernel.db.session() as session:
        async with session.begin():
            await profiles.adjust_counters(session, lena_id, tracks=-20)
        await profiles.invalidate_pending(kernel, session)
    assert api.get(url).json()["tracks_count"] == 0

    # A change made behind the API's back shows once invalidate_profile() is called.
    sql("UPDATE user_profiles SET tracks_count = 5 WHERE id = %s", lena["id"])
    assert api.get(url).json()["tracks_count"] == 0  # still the cached copy
    await profiles.invalidate_profile(kernel, lena_id)
    assert api.get(url).json()["tracks_count"] == 5
    async with kernel.db.session() as session, session.begin():
        assert await profiles.adjust_counters(session, uuid.uuid4(), followers=1) is False


# -- cache ----------------------------------------------------------------------------------
def test_reads_fill_the_cache_and_writes_invalidate_it(api: Any, rds: Any) -> None:
    mia = me(api, "mia", email="mia@example.com")
    patch(api, "mia", {"handle": "mia_old", "display_name": "Mia"})
    id_key, old_key = cache_key("id", mia["id"]), cache_key("handle", "mia_old")
    assert not rds.exists(id_key)

    assert api.get(f"/api/v1/users/{mia['id']}").json()["display_name"] == "Mia"
    cached = json.loads(rds.get(id_key))
    assert cached["display_name"] == "Mia" and "email" not in cached and "sub" not in cached
    assert 0 < rds.ttl(id_key) <= 600
    assert api.get("/api/v1/users/by-handle/MIA_OLD").status_code == 200
    assert json.loads(rds.get(old_key)) == {"id": mia["id"]}

    # A second read is served from Redis: prove it by planting a marker in the cached copy.
    change_cached(rds, id_key, json.dumps({**cached, "display_name": "from-cache"}), ex=600)
    assert api.get(f"/api/v1/users/{mia['id']}").json()["display_name"] == "from-cache"

    assert patch(api, "mia", {"display_name": "Mia II", "handle": "mia_new"}).status_code == 200
    assert not rds.exists(id_key) and not rds.exists(old_key)
    fresh = api.get(f"/api/v1/users/{mia['id']}").json()
    assert fresh["display_name"] == "Mia II" and fresh["handle"] == "mia_new"
    assert json.loads(rds.get(id_key))["display_name"] == "Mia II"
    problem(api.get("/api/v1/users/by-handle/mia_old"), 404, "USER_NOT_FOUND")
    assert api.get("/api/v1/users/by-handle/mia_new").json()["id"] == mia["id"]


def test_the_callers_account_is_cached_and_every_change_drops_it(
    api: Any, rds: Any, live_server: Any
) -> None:
    """Every authenticated request needs the caller's row: after the first call it comes from
    Redis (``acct:<id>`` behind ``sub:<sub>``), never stale after a change."""
    first = me(api, "ada", email="ada@example.com")
    acct, sub = cache_key("acct", first["id"]), cache_key("sub", "ada")
    assert json.loads(rds.get(sub)) == {"id": first["id"]}
    cached = json.loads(rds.get(acct))
    assert (cached["sub"], cached["email"], cached["is_banned"]) == (
        "ada",
        "ada@example.com",
        False,
    )
    assert 0 < rds.ttl(acct) <= 300 and rds.ttl(sub) > 3600

    # served from Redis: prove it with a marker planted in the cached row
    change_cached(rds, acct, json.dumps({**cached, "display_name": "from-cache"}))
    assert me(api, "ada", email="ada@example.com")["display_name"] == "from-cache"

    # a change leaves a short tombstone, so no reader can put back a row it read before the
    # commit (SET NX); reads meanwhile come from PostgreSQL
    assert patch(api, "ada", {"display_name": "Ada L"}).status_code == 200
    assert json.loads(rds.get(acct)) == {"changed": True} and 0 < rds.ttl(acct) <= 10
    assert me(api, "ada", email="ada@example.com")["display_name"] == "Ada L"
    assert json.loads(rds.get(acct)) == {"changed": True}  # not overwritten
    # the API process keeps copies in memory (near cache), but never of a tombstone
    near = live_server.kernel.cache.near_cache("user-profile")
    assert near is not None and near.get(f"acct:{first['id']}") is None
    change_cached(rds, acct)  # as when the tombstone expires
    assert me(api, "ada", email="ada@example.com")["display_name"] == "Ada L"
    assert json.loads(rds.get(acct))["display_name"] == "Ada L"
    assert me(api, "ada", email="ada@example.com")["display_name"] == "Ada L"
    assert json.loads(near.get(f"acct:{first['id']}"))["display_name"] == "Ada L"

    # a new address in the token is taken at once, whatever the cache holds
    assert me(api, "ada", email="ada@new.example")["email"] == "ada@new.example"
    assert json.loads(rds.get(acct)) == {"changed": True}  # the old address is gone
    assert me(api, "ada", email="ada@new.example")["email"] == "ada@new.example"

    # a cached row naming another subject is never served
    change_cached(rds, acct, json.dumps({**cached, "sub": "mallory", "display_name": "forged"}))
    assert me(api, "ada", email="ada@new.example")["display_name"] == "Ada L"
    # nor one in another shape (written by another version): a miss, not a 500
    change_cached(rds, acct, json.dumps({"sub": "ada", "id": "not-a-uuid"}))
    assert me(api, "ada", email="ada@new.example")["display_name"] == "Ada L"

    # a lost mapping (Redis flushed, another process) costs a lookup, not a new account
    change_cached(rds, acct)
    change_cached(rds, sub)
    assert me(api, "ada", email="ada@new.example")["id"] == first["id"]


def test_stale_handle_mapping_is_detected(api: Any, rds: Any) -> None:
    nina = me(api, "nina")
    patch(api, "nina", {"handle": "nina_n"})
    olga = me(api, "olga")
    change_cached(rds, cache_key("handle", "nina_n"), json.dumps({"id": olga["id"]}), ex=600)
    body = api.get("/api/v1/users/by-handle/nina_n").json()
    assert body["id"] == nina["id"] and body["handle"] == "nina_n"
    assert json.loads(rds.get(cache_key("handle", "nina_n"))) == {"id": nina["id"]}


def test_everything_answers_from_postgres_when_redis_is_down(
    api: Any, make_settings: Callable[..., Any], jwks_server: Any
) -> None:
    from core.app import create_app
    from core.embedded import free_port
    from core.testing.live import LiveServer

    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    app = create_app(make_settings(redis_url=dead_redis, broker_url=dead_redis))
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        headers = {"Authorization": f"Bearer {jwks_server.mint('paul')}"}
        created = client.get(ME, headers=headers)
        assert created.status_code == 200, created.text
        paul = created.json()
        changed = client.patch(ME, json={"handle": "paul_p"}, headers=headers)
        assert changed.status_code == 200 and changed.json()["handle"] == "paul_p"
        assert client.get(f"/api/v1/users/{paul['id']}").json()["handle"] == "paul_p"
        assert client.get("/api/v1/users/by-handle/PAUL_P").json()["id"] == paul["id"]
        problem(client.get(f"/api/v1/users/{uuid.uuid4()}"), 404, "USER_NOT_FOUND")


def test_openapi_documents_the_contract(api: Any) -> None:
    schema = api.get("/openapi.json").json()
    paths = schema["paths"]
    assert set(paths["/api/v1/users/me"]) == {"get", "patch", "delete"}
    for path in ("/api/v1/users/me", "/api/v1/users/{user_id}", "/api/v1/users/by-handle/{handle}"):
        assert paths[path]["get"]["tags"] == ["user-profile"]
    patch_op = paths["/api/v1/users/me"]["patch"]
    assert {"401", "403", "409", "422"} <= set(patch_op["responses"])
    assert "ACCOUNT_BANNED" in json.dumps(patch_op["responses"]["403"])
    update = schema["components"]["schemas"]["ProfileUpdate"]
    assert update["additionalProperties"] is False
    assert set(update["properties"]) == {"handle", "display_name", "bio", "avatar_url"}
    read = schema["components"]["schemas"]["ProfileRead"]
    assert read["examples"][0]["handle"] == "dj_nova"
    assert read["properties"]["created_at"]["format"] == "date-time"


def test_migration_round_trip_and_no_drift(
    soundhive_services: Any, make_settings: Callable[..., Any]
) -> None:
    """One head; upgrade → downgrade → upgrade; the models match what the migration builds."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine, inspect, pool
    from sqlmodel import SQLModel

    from core.kernel import Kernel
    from core.migrate import alembic_config, downgrade_branch, sync_url, upgrade
    from core.testing.services import fresh_database

    with fresh_database(soundhive_services.database_url, prefix="up_migrate") as url:
        kernel = Kernel(make_settings(database_url=url))
        script = ScriptDirectory.from_config(alembic_config(kernel))
        assert [r.revision for r in script.get_revisions("user-profile@head")] == [
            "user_profile_0001"
        ]
        upgrade(kernel)
        downgrade_branch(kernel, "user-profile")
        engine = create_engine(sync_url(url), poolclass=pool.NullPool)
        try:
            assert "user_profiles" not in inspect(engine).get_table_names()
            upgrade(kernel)
            with engine.connect() as conn:
                context = MigrationContext.configure(
                    conn,
                    opts={
                        "compare_type": True,
                        "include_object": lambda obj, name, type_, *_: (
                            type_ != "table" or name == "user_profiles"
                        ),
                    },
                )
                assert compare_metadata(context, SQLModel.metadata) == []
        finally:
            engine.dispose()
