"""activity-feed (``GET /api/v1/feed``) over real HTTP, on the real PostgreSQL and Redis.

Tracks are made with ``ready_track`` (upload + mark ready); bans go through
``user_profile.api.set_banned`` on a kernel of the test's own event loop, as moderation would.
The feed reads the database, never the track cache, so no cache flushing is needed after a ban.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from core.pagination import encode_cursor
from tests.music_helpers import ready_track, sql, upload, wav_bytes

API = "/api/v1"
FEED = f"{API}/feed"
PROBLEM = "application/problem+json"
TRACK_FIELDS = {
    "id",
    "owner_id",
    "title",
    "artist_name",
    "description",
    "tags",
    "mood",
    "visibility",
    "status",
    "failure_reason",
    "duration_ms",
    "sample_rate",
    "channels",
    "bitrate",
    "bpm",
    "loudness_lufs",
    "waveform",
    "cover_url",
    "like_count",
    "comment_count",
    "play_count",
    "created_at",
    "updated_at",
}


# -- helpers --------------------------------------------------------------------------------
@pytest.fixture
async def kernel(make_settings: Callable[..., Any], api: Any) -> AsyncIterator[Any]:
    """A kernel on this test's event loop (the live server's engine belongs to its own loop)."""
    from core.kernel import Kernel

    k = Kernel(make_settings())
    yield k
    await k.aclose()


async def set_banned(kernel: Any, user_id: str, banned: bool) -> None:
    from skills.user_profile import api as profiles

    async with kernel.db.session() as session, profiles.transaction(kernel, session):
        assert await profiles.set_banned(session, uuid.UUID(user_id), banned) is True


def me(api: Any, sub: str) -> str:
    """Provision ``sub``'s profile and return its id."""
    response = api.get(f"{API}/users/me", headers=api.auth(sub))
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def follow(api: Any, sub: str, target: str, method: str = "POST") -> None:
    response = api.request(method, f"{API}/users/{target}/follow", headers=api.auth(sub))
    assert response.status_code == 200, response.text


def feed(api: Any, sub: str, **params: Any) -> dict[str, Any]:
    response = api.get(FEED, params=params, headers=api.auth(sub))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert set(body) == {"items", "next_cursor"}
    return body


def titles(body: dict[str, Any]) -> list[str]:
    return [item["title"] for item in body["items"]]


def walk(api: Any, sub: str, limit: int) -> list[list[str]]:
    """Every page of ``sub``'s feed, following ``next_cursor`` to the end."""
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        body = feed(api, sub, **params)
        pages.append([item["id"] for item in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 50, "the cursor does not advance"


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["code"] == code and body["status"] == status
    assert body["request_id"] == response.headers["x-request-id"]
    return body


def post(api: Any, services: Any, sub: str, title: str, **fields: Any) -> dict[str, Any]:
    return ready_track(api, services, api.auth(sub), title=title, **fields)


# -- what the feed contains -----------------------------------------------------------------
def test_only_followed_accounts_newest_first(api: Any, soundhive_services: Any) -> None:
    bob, carol, _dave = me(api, "bob"), me(api, "carol"), me(api, "dave")
    follow(api, "alice", bob)
    follow(api, "alice", carol)
    post(api, soundhive_services, "bob", "b1", tags=["Lo-Fi", "night"], mood="calm")
    post(api, soundhive_services, "dave", "d1")  # not followed
    post(api, soundhive_services, "carol", "c1")
    post(api, soundhive_services, "alice", "a1")  # the caller's own tracks are not in it
    last = post(api, soundhive_services, "bob", "b2")

    body = feed(api, "alice")
    assert titles(body) == ["b2", "c1", "b1"]
    assert body["next_cursor"] is None
    first = body["items"][0]
    assert set(first) >= TRACK_FIELDS and "stream_url" not in first
    assert first["id"] == last["id"] and first["owner_id"] == bob
    assert first["status"] == "ready" and first["visibility"] == "public"
    assert body["items"][2]["tags"] == ["lo-fi", "night"] and body["items"][2]["mood"] == "calm"
    stamps = [item["created_at"] for item in body["items"]]
    assert stamps == sorted(stamps, reverse=True)
    assert titles(feed(api, "dave")) == []  # dave follows nobody


WAVEFORM = '{"samples_per_pixel": 256, "data": [-3, 4, -2, 9], "length": 2}'


def same_as_detail(api: Any, services: Any, item: dict[str, Any], sub: str) -> None:
    """A feed item is the track's detail view without ``stream_url``: every field and value,
    the cover URL signed for the same object (its expiry second may differ)."""
    import redis

    redis.Redis.from_url(services.redis_url).delete(f"sh:track:{item['id']}")  # fresh detail
    detail = api.get(f"{API}/tracks/{item['id']}", headers=api.auth(sub)).json()
    assert detail.pop("stream_url")
    item, cover = dict(item), item["cover_url"]
    assert (cover and cover.split("?")[0]) == (
        detail["cover_url"] and detail["cover_url"].split("?")[0]
    )
    if cover:
        assert "sig=" in cover
    item["cover_url"] = detail["cover_url"]
    assert item == detail


def test_items_are_the_tracks_list_form(api: Any, soundhive_services: Any) -> None:
    """The feed renders its rows itself (one statement, tags aggregated in SQL): each item
    must equal what the track's own endpoint shows, with tags in the owner's order."""
    svc = soundhive_services
    star = me(api, "star")
    follow(api, "critic", star)
    rich = post(
        api,
        svc,
        "star",
        "rich",
        tags=["night", "Lo-Fi", "rain"],
        mood="dreamy",
        artist_name="Star",
        description="long\ntext",
    )
    bare = post(api, svc, "star", "bare")
    sql(
        svc,
        "UPDATE tracks SET cover_key = %s, bpm = 92.5, loudness_lufs = -14.2, sample_rate ="
        " 44100, channels = 2, bitrate = 320000, like_count = 3, comment_count = 2, play_count"
        " = 41, waveform = %s::jsonb WHERE id = %s",
        f"covers/{rich['id']}.jpg",
        WAVEFORM,
        rich["id"],
    )

    items = feed(api, "critic")["items"]
    assert [item["id"] for item in items] == [bare["id"], rich["id"]]
    assert items[1]["tags"] == ["night", "lo-fi", "rain"] and items[0]["tags"] == []
    assert items[1]["waveform"]["data"] == [-3, 4, -2, 9] and items[1]["cover_url"]
    assert items[1]["play_count"] == 41 and items[0]["cover_url"] is None
    for item in items:
        same_as_detail(api, svc, item, "critic")


def test_empty_feed(api: Any, soundhive_services: Any) -> None:
    assert feed(api, "loner") == {"items": [], "next_cursor": None}
    quiet = me(api, "quiet")
    follow(api, "loner", quiet)  # follows someone who never posted
    assert feed(api, "loner") == {"items": [], "next_cursor": None}


def test_hidden_tracks_and_owners_are_left_out(api: Any, soundhive_services: Any) -> None:
    svc = soundhive_services
    artist = me(api, "artist")
    follow(api, "fan", artist)
    post(api, svc, "artist", "public")
    post(api, svc, "artist", "unlisted", visibility="unlisted")
    post(api, svc, "artist", "private", visibility="private")
    r = upload(api, api.auth("artist"), wav_bytes(seconds=1), content_type="audio/wav", title="wip")
    assert r.status_code == 201 and r.json()["status"] == "processing"
    failed = post(api, svc, "artist", "failed")
    sql(svc, "UPDATE tracks SET status = 'failed' WHERE id = %s", failed["id"])
    hidden = post(api, svc, "artist", "hidden")
    sql(svc, "UPDATE tracks SET is_hidden = true WHERE id = %s", hidden["id"])

    assert titles(feed(api, "fan")) == ["public"]
    sql(svc, "UPDATE tracks SET is_hidden = false WHERE id = %s", hidden["id"])
    assert titles(feed(api, "fan")) == ["hidden", "public"]  # unhidden: back at its place


async def test_banned_and_deleted_owners_are_left_out(
    api: Any, soundhive_services: Any, kernel: Any
) -> None:
    svc = soundhive_services
    spammer, leaver, friend = me(api, "spammer"), me(api, "leaver"), me(api, "friend")
    for target in (spammer, leaver, friend):
        follow(api, "reader", target)
    post(api, svc, "spammer", "spam")
    post(api, svc, "leaver", "bye")
    post(api, svc, "friend", "hello")
    assert titles(feed(api, "reader")) == ["hello", "bye", "spam"]

    await set_banned(kernel, spammer, True)
    assert api.delete(f"{API}/users/me", headers=api.auth("leaver")).status_code == 204
    assert titles(feed(api, "reader")) == ["hello"]

    await set_banned(kernel, spammer, False)  # the follow edge survived the ban
    assert titles(feed(api, "reader")) == ["hello", "spam"]


async def test_a_banned_caller_may_still_read(
    api: Any, soundhive_services: Any, kernel: Any
) -> None:
    idol = me(api, "idol")
    troll = me(api, "troll")
    follow(api, "troll", idol)
    post(api, soundhive_services, "idol", "hit")
    await set_banned(kernel, troll, True)
    assert titles(feed(api, "troll")) == ["hit"]


def test_unfollow_removes_the_accounts_tracks(api: Any, soundhive_services: Any) -> None:
    band, solo = me(api, "band"), me(api, "solo")
    follow(api, "listener", band)
    follow(api, "listener", solo)
    post(api, soundhive_services, "band", "band1")
    post(api, soundhive_services, "solo", "solo1")
    assert titles(feed(api, "listener")) == ["solo1", "band1"]

    follow(api, "listener", band, method="DELETE")
    assert titles(feed(api, "listener")) == ["solo1"]
    follow(api, "listener", band)  # following again brings the back catalogue
    assert titles(feed(api, "listener")) == ["solo1", "band1"]


def test_ordered_by_upload_time_even_if_ready_later(api: Any, soundhive_services: Any) -> None:
    """``created_at`` orders the feed (it matches the index); a track that finishes
    processing late takes the place of its upload, not the top."""
    svc = soundhive_services
    slow = me(api, "slowpoke")
    follow(api, "watcher", slow)
    r = upload(api, api.auth("slowpoke"), wav_bytes(seconds=1), content_type="audio/wav")
    assert r.status_code == 201, r.text
    post(api, svc, "slowpoke", "quick")
    assert titles(feed(api, "watcher")) == ["quick"]
    sql(svc, "UPDATE tracks SET status = 'ready', ready_at = now() WHERE id = %s", r.json()["id"])
    assert titles(feed(api, "watcher")) == ["quick", "Night walk"]


# -- pagination -----------------------------------------------------------------------------
def test_pages_have_no_duplicates_or_gaps(api: Any, soundhive_services: Any) -> None:
    svc = soundhive_services
    ann, ben = me(api, "ann"), me(api, "ben")
    follow(api, "pager", ann)
    follow(api, "pager", ben)
    for i in range(4):
        post(api, svc, "ann", f"ann{i}")
        post(api, svc, "ben", f"ben{i}")
    everything = [item["id"] for item in feed(api, "pager", limit=100)["items"]]
    assert len(everything) == 8

    pages = walk(api, "pager", limit=3)
    assert [len(page) for page in pages] == [3, 3, 2]
    assert [i for page in pages for i in page] == everything
    assert walk(api, "pager", limit=4) == [everything[:4], everything[4:]]  # a full last page

    # Ties on created_at are broken by id, so equal timestamps never repeat or vanish.
    sql(svc, "UPDATE tracks SET created_at = '2025-01-01T00:00:00Z'")
    tied = [i for page in walk(api, "pager", limit=3) for i in page]
    assert tied == sorted(everything, reverse=True)


def test_one_busy_account_can_fill_whole_pages(api: Any, soundhive_services: Any) -> None:
    """More followees than the page size, and the newest items all from one of them."""
    svc = soundhive_services
    for sub in ("wa", "wb", "wc", "wd"):
        follow(api, "browser", me(api, sub))
    for sub in ("wa", "wb", "wc"):
        post(api, svc, sub, f"{sub}1")
    for i in (1, 2, 3):
        post(api, svc, "wd", f"wd{i}")
    pages = walk(api, "browser", limit=2)
    by_id = {item["id"]: item["title"] for item in feed(api, "browser", limit=100)["items"]}
    assert [[by_id[i] for i in page] for page in pages] == [
        ["wd3", "wd2"],
        ["wd1", "wc1"],
        ["wb1", "wa1"],
    ]


async def test_pages_match_a_naive_query_on_random_data(api: Any, kernel: Any) -> None:
    """The two-step query against ``ORDER BY … LIMIT`` over everything, on messy data: ties,
    every status and visibility, hidden tracks, banned and deleted owners, non-followees."""
    import random
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import text

    from skills.activity_feed import repository as repo

    rng = random.Random(7)
    caller = uuid.uuid4()
    owners = [uuid.uuid4() for _ in range(30)]
    base = datetime(2025, 1, 1, tzinfo=UTC)
    async with kernel.db.session() as session, session.begin():
        for i, uid in enumerate([caller, *owners]):
            await session.execute(
                text(
                    "INSERT INTO user_profiles (id, sub, handle, display_name, is_banned,"
                    " deleted_at) VALUES (:id, :sub, :handle, :handle, :banned, :deleted)"
                ),
                {
                    "id": uid,
                    "sub": f"rnd-{i}",
                    "handle": f"rnd{i}",
                    "banned": i in (3, 4),
                    "deleted": base if i == 5 else None,
                },
            )
        for uid in owners[:20]:
            await session.execute(
                text("INSERT INTO follows (id, follower_id, following_id) VALUES (:i, :a, :b)"),
                {"i": uuid.uuid4(), "a": caller, "b": uid},
            )
        for n in range(400):
            await session.execute(
                text(
                    "INSERT INTO tracks (id, owner_id, title, object_key, content_type,"
                    " file_size, status, visibility, is_hidden, created_at)"
                    " VALUES (:id, :owner, :title, 'k', 'audio/wav', 1, :status, :vis,"
                    " :hidden, :at)"
                ),
                {
                    "id": uuid.uuid4(),
                    "owner": rng.choice(owners),
                    "title": f"t{n}",
                    "status": rng.choice(["ready"] * 6 + ["processing", "failed"]),
                    "vis": rng.choice(["public"] * 6 + ["unlisted", "private"]),
                    "hidden": rng.random() < 0.1,
                    "at": base + timedelta(minutes=rng.randrange(150)),  # many ties
                },
            )
        expected = list(
            (
                await session.execute(
                    text(
                        "SELECT t.id FROM tracks t JOIN user_profiles p ON p.id = t.owner_id"
                        " JOIN follows f ON f.following_id = t.owner_id"
                        " WHERE f.follower_id = :me AND t.status = 'ready'"
                        " AND t.visibility = 'public' AND NOT t.is_hidden"
                        " AND NOT p.is_banned AND p.deleted_at IS NULL"
                        " ORDER BY t.created_at DESC, t.id DESC"
                    ),
                    {"me": caller},
                )
            ).scalars()
        )
    assert 100 < len(expected) < 250
    async with kernel.db.session() as session:
        for limit in (1, 3, 7, 20):
            seen: list[uuid.UUID] = []
            after: repo.Position | None = None
            while True:
                rows = await repo.page(session, caller, after=after, limit=limit)
                assert len(rows) <= limit
                seen += [row.id for row in rows]
                if len(rows) < limit:
                    break
                after = (rows[-1].created_at, rows[-1].id)
            assert seen == expected, limit


def test_new_uploads_do_not_shift_later_pages(api: Any, soundhive_services: Any) -> None:
    svc = soundhive_services
    poet = me(api, "poet")
    follow(api, "reader2", poet)
    for i in range(5):
        post(api, svc, "poet", f"p{i}")
    first = feed(api, "reader2", limit=2)
    assert titles(first) == ["p4", "p3"]
    post(api, svc, "poet", "fresh")  # lands above the cursor
    second = feed(api, "reader2", limit=2, cursor=first["next_cursor"])
    assert titles(second) == ["p2", "p1"]
    third = feed(api, "reader2", limit=2, cursor=second["next_cursor"])
    assert titles(third) == ["p0"] and third["next_cursor"] is None
    assert titles(feed(api, "reader2", limit=2)) == ["fresh", "p4"]


# -- errors and contract --------------------------------------------------------------------
def test_requires_a_token(api: Any) -> None:
    problem(api.get(FEED), 401, "UNAUTHORIZED")
    bad = api.get(FEED, headers={"Authorization": "Bearer not-a-jwt"})
    problem(bad, 401, "UNAUTHORIZED")


def test_deleted_caller_is_refused(api: Any) -> None:
    me(api, "gone")
    assert api.delete(f"{API}/users/me", headers=api.auth("gone")).status_code == 204
    problem(api.get(FEED, headers=api.auth("gone")), 403, "ACCOUNT_DELETED")


def test_bad_cursor_and_limit(api: Any) -> None:
    headers = api.auth("picky")
    forged = api.get(FEED, params={"cursor": "forged"}, headers=headers)
    body = problem(forged, 422, "INVALID_CURSOR")
    assert body["detail"] == "The cursor is not valid for this list."
    for values in (["yesterday", str(uuid.uuid4())], ["2025-01-01T00:00:00+00:00", "x"]):
        forged = api.get(FEED, params={"cursor": encode_cursor(values)}, headers=headers)
        problem(forged, 422, "INVALID_CURSOR")
    for limit in (0, 101, "many"):
        problem(api.get(FEED, params={"limit": limit}, headers=headers), 422, "VALIDATION_FAILED")


def test_openapi_documents_the_feed(api: Any) -> None:
    schema = api.get("/openapi.json").json()
    op = schema["paths"][FEED]["get"]
    assert op["tags"] == ["activity-feed"]
    assert {p["name"] for p in op["parameters"]} == {"limit", "cursor"}
    assert {"200", "401", "403", "422"} <= set(op["responses"])
    ok = op["responses"]["200"]["content"]["application/json"]
    # FastAPI drops nulls from the published document, so the example's next_cursor goes too.
    assert ok["examples"]["empty"]["value"]["items"] == []
    assert ok["examples"]["page"]["value"]["next_cursor"]
    page = schema["components"]["schemas"][ok["schema"]["$ref"].rsplit("/", 1)[-1]]
    assert page["properties"]["items"]["items"]["$ref"].endswith("/TrackRead")


def test_feed_works_with_redis_down(
    api: Any, soundhive_services: Any, make_settings: Callable[..., Any], jwks_server: Any
) -> None:
    from core.app import create_app
    from core.embedded import free_port
    from core.testing.live import LiveServer

    singer = me(api, "singer")
    follow(api, "offline", singer)
    post(api, soundhive_services, "singer", "still here")

    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    app = create_app(make_settings(redis_url=dead_redis, broker_url=dead_redis))
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        token = {"Authorization": f"Bearer {jwks_server.mint('offline')}"}
        response = client.get(FEED, headers=token)
    assert response.status_code == 200, response.text
    assert titles(response.json()) == ["still here"]
