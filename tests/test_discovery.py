"""tag-search-discovery over real HTTP, on the real PostgreSQL and Redis of the test session.

Most tracks are written with SQL (fast fixtures: search does not care how a row was made) and
indexed by the sweep job, called on a kernel of the test's own loop; one test goes through the
upload API and a real worker, so the event path is covered end to end.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from core.testing.plugin import wait_for
from core.testing.services import plain_url
from skills.tag_search_discovery import textnorm
from skills.tag_search_discovery.indexer import documents
from skills.tag_search_discovery.models import NAMES_SQL, TSV_SQL
from skills.tag_search_discovery.repository import match
from skills.tag_search_discovery.service import refresh_popular_tags
from skills.tag_search_discovery.tasks import (
    SWEEP_PARTS,
    compute_trending,
    reindex_all,
    sync_search,
)
from skills.tag_search_discovery.trending import AGE_SCALE_DAYS, HALF_LIFE_HOURS, WEIGHTS
from tests.music_helpers import ready_track, sql

API = "/api/v1"
PAGE_KEYS = {"items", "next_cursor"}


# -- helpers (also used by test_recommendations) ----------------------------------------------
@pytest.fixture
async def kernel(make_settings: Callable[..., Any], api: Any) -> AsyncIterator[Any]:
    """A kernel on this test's event loop (the live server's engine belongs to its own loop)."""
    from core.kernel import Kernel

    k = Kernel(make_settings())
    yield k
    await k.aclose()


async def reindex(kernel: Any) -> int:
    """What the sweep job does over an hour, at once, with the tag counts it refreshes."""
    written = await reindex_all(kernel)
    await refresh_popular_tags(kernel)
    return written


def user(api: Any, sub: str) -> tuple[dict[str, str], str]:
    """Headers for ``sub`` and the id of its provisioned profile."""
    headers = api.auth(sub)
    response = api.get(f"{API}/users/me", headers=headers)
    assert response.status_code == 200, response.text
    return headers, response.json()["id"]


def add_track(
    services: Any,
    owner_id: str,
    title: str,
    *,
    tags: tuple[str, ...] = (),
    artist: str | None = None,
    description: str | None = None,
    mood: str | None = None,
    bpm: float | None = None,
    visibility: str = "public",
    status: str = "ready",
    created_at: datetime | None = None,
    plays: int = 0,
    likes: int = 0,
    trending: float = 0.0,
) -> str:
    """A track row written directly (tags included), as the music skills would store it."""
    track_id = str(uuid.uuid4())
    created_at = created_at or datetime.now(UTC)
    sql(
        services,
        "INSERT INTO tracks (id, owner_id, title, artist_name, description, mood, bpm, "
        "visibility, status, object_key, content_type, file_size, duration_ms, created_at, "
        "updated_at, play_count, like_count, trending_score) VALUES (%s, %s, %s, %s, %s, %s, "
        "%s, %s, %s, %s, 'audio/mpeg', 1000, 180000, %s, %s, %s, %s, %s)",
        track_id, owner_id, title, artist, description, mood, bpm, visibility, status,
        f"test/{track_id}.mp3", created_at, created_at, plays, likes, trending,
    )  # fmt: skip
    for position, name in enumerate(tags):
        sql(services, "INSERT INTO tags (name) VALUES (%s) ON CONFLICT DO NOTHING", name)
        sql(
            services,
            "INSERT INTO track_tags (track_id, tag_id, position) "
            "SELECT %s, id, %s FROM tags WHERE name = %s",
            track_id,
            position,
            name,
        )
    return track_id


def listing(api: Any, path: str, **params: Any) -> dict[str, Any]:
    response = api.get(f"{API}{path}", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert set(body) >= PAGE_KEYS
    return body


def search(api: Any, **params: Any) -> dict[str, Any]:
    body = listing(api, "/search/tracks", **params)
    assert set(body) == {*PAGE_KEYS, "fuzzy"}
    return body


def titles(page: dict[str, Any]) -> list[str]:
    return [item["title"] for item in page["items"]]


def ids(page: dict[str, Any]) -> list[str]:
    return [item["id"] for item in page["items"]]


def walk(api: Any, path: str, limit: int, **params: Any) -> list[str]:
    """Every id of a list, following next_cursor; pages are full until the last."""
    found: list[str] = []
    cursor = None
    while True:
        body = listing(api, path, limit=limit, **({"cursor": cursor} if cursor else {}), **params)
        found += ids(body)
        cursor = body["next_cursor"]
        if cursor is None:
            return found
        assert len(body["items"]) == limit


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code and body["status"] == status and body["detail"]
    return body


# -- normalisation ----------------------------------------------------------------------------
def test_text_is_folded_and_armoured_for_any_locale() -> None:
    assert textnorm.fold("Lo-Fi  CHILL!") == "lofi chill"
    assert textnorm.fold("Lo-Fi chill", split_joined=True) == "lofi chill lo fi"
    assert textnorm.fold("ＬＯＦＩ Café") == "lofi cafe"  # NFKC, accents
    assert textnorm.fold("잔잔한, 밤…산책") == "잔잔한 밤 산책"
    armoured = textnorm.document("잔잔한 밤")
    assert armoured.isascii() and armoured == "Qc04Qc04Qi04 Q70g"
    assert textnorm.query_terms("밤 산책 밤") == [textnorm.armour("밤"), textnorm.armour("산책")]
    assert textnorm.prefix_tsquery(["lofi"]) == "lofi:*"
    assert textnorm.prefix_tsquery(["lo", "Q70g"]) == "(lo:* & q70g:*) | loq70g:*"
    # a syllable's armour is 4 characters with an upper-case marker: no false substrings
    assert textnorm.armour("잔한") in textnorm.armour("잔잔한")
    assert textnorm.armour("한잔") not in textnorm.armour("잔잔한")


@pytest.fixture
def c_locale_url(soundhive_services: Any) -> Any:
    """A database whose LC_CTYPE is plain ``C`` on the test server (dropped afterwards)."""
    from core.testing.services import with_database

    name = f"soundhive_c_{uuid.uuid4().hex[:8]}"
    admin = plain_url(soundhive_services.admin_url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            f"CREATE DATABASE \"{name}\" LC_CTYPE 'C' LC_COLLATE 'C' TEMPLATE template0"  # type: ignore[arg-type]
        )
    try:
        yield with_database(soundhive_services.admin_url, name)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


def test_search_matches_korean_in_a_c_locale_database(c_locale_url: str) -> None:
    """With LC_CTYPE=C pg_trgm drops Hangul; the armoured documents still match, and through
    the trigram and full-text indexes, whatever the server's locale."""
    from sqlalchemy import create_engine, select

    from skills.tag_search_discovery.models import TrackSearch

    with psycopg.connect(plain_url(c_locale_url), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        assert conn.execute("SELECT show_trgm('잔잔한')").fetchone() == ([],)  # the trap
        conn.execute(
            "CREATE TABLE track_search (track_id int PRIMARY KEY, title_doc text NOT NULL, "
            "artist_doc text NOT NULL, tags_doc text NOT NULL, body_doc text NOT NULL, "
            f"names text GENERATED ALWAYS AS ({NAMES_SQL}) STORED, "
            f"tsv tsvector GENERATED ALWAYS AS ({TSV_SQL}) STORED, "
            "boost float8 NOT NULL DEFAULT 0)"
        )
        conn.execute("CREATE INDEX ON track_search USING gin (names gin_trgm_ops)")
        conn.execute("CREATE INDEX ON track_search USING gin (tsv)")
        for n, title in enumerate(
            ["잔잔한 밤 산책", "신나는 여름 밤", "lofi chill", "Lo-Fi Beats"]
        ):
            docs = documents(title, "민지", None, ["새벽"])
            conn.execute(
                "INSERT INTO track_search VALUES (%s, %s, %s, %s, %s)", (n, *docs.values())
            )
        filler = documents("filler", "someone", "words", [])  # enough rows for index plans
        conn.execute(
            "INSERT INTO track_search SELECT n, %s, %s, %s, %s || n "
            "FROM generate_series(100, 3000) AS n",
            tuple(filler.values()),
        )
        conn.execute("ANALYZE track_search")
    engine = create_engine(c_locale_url.replace("postgresql://", "postgresql+psycopg://", 1))
    column = TrackSearch.__table__.c.track_id  # type: ignore[attr-defined]

    def query(q: str, fuzzy: bool) -> Any:
        condition, _ = match(textnorm.query_terms(q), fuzzy=fuzzy)
        return select(column).where(condition)

    def found(q: str, fuzzy: bool = False) -> list[int]:
        with engine.connect() as conn:
            if fuzzy:
                conn.exec_driver_sql("SET pg_trgm.word_similarity_threshold = 0.5")
            return sorted(row[0] for row in conn.execute(query(q, fuzzy)))

    try:
        assert found("잔잔한") == [0]
        assert found("밤 산책") == [0]
        assert found("잔한") == [0]  # the middle of a word: trigram substring
        assert found("밤") == [0, 1]
        assert found("lo-fi") == [2, 3]
        assert found("새벽") == [0, 1, 2, 3]  # a tag
        assert found("산채", fuzzy=True) == [0]  # one jamo off
        with engine.connect() as conn:
            conn.exec_driver_sql("SET enable_seqscan = off")
            compiled = query("잔한", False).compile(engine)
            rows = conn.exec_driver_sql(f"EXPLAIN {compiled}", compiled.params)
            plan = " ".join(row[0] for row in rows)
        assert "Bitmap Index Scan" in plan and "Seq Scan" not in plan
    finally:
        engine.dispose()


# -- search -----------------------------------------------------------------------------------
async def test_korean_titles_are_found_by_word_phrase_and_part(
    api: Any, soundhive_services: Any, kernel: Any
) -> None:
    headers, _ = user(api, "minji")
    walk_id = ready_track(api, soundhive_services, headers, title="잔잔한 밤 산책", tags=["새벽"])[
        "id"
    ]
    summer_id = ready_track(api, soundhive_services, headers, title="신나는 여름 밤")["id"]
    ready_track(api, soundhive_services, headers, title="lofi chill")
    assert await reindex(kernel) == 3
    assert ids(search(api, q="잔잔한")) == [walk_id]
    assert ids(search(api, q="밤 산책")) == [walk_id]
    assert ids(search(api, q="산책 밤")) == [walk_id]  # any order
    assert ids(search(api, q="잔잔")) == [walk_id]  # the start of a word
    assert ids(search(api, q="잔한")) == [walk_id]  # the middle of a word
    assert ids(search(api, q="새벽")) == [walk_id]  # a tag
    both = search(api, q="밤")
    assert set(ids(both)) == {walk_id, summer_id} and both["fuzzy"] is False
    typo = search(api, q="잔잔한 밤 산채")  # the last syllable mistyped
    assert typo["fuzzy"] is True and ids(typo)[0] == walk_id
    item = search(api, q="잔잔한")["items"][0]
    assert item["title"] == "잔잔한 밤 산책" and item["tags"] == ["새벽"]
    assert item["status"] == "ready" and item["visibility"] == "public"


async def test_lofi_spellings_case_width_and_typos(
    api: Any, soundhive_services: Any, kernel: Any
) -> None:
    _, owner = user(api, "alex")
    chill = add_track(soundhive_services, owner, "lofi chill")
    beats = add_track(soundhive_services, owner, "Lo-Fi Beats")
    add_track(soundhive_services, owner, "Night Drive", tags=("synthwave",))
    await reindex(kernel)
    for q in ("lofi", "lo-fi", "LOFI", "Lo Fi", "ｌｏｆｉ"):
        page = search(api, q=q)
        assert set(ids(page)) == {chill, beats} and page["fuzzy"] is False, q
    assert ids(search(api, q="lofi chil")) == [chill]  # a prefix is an exact match
    for typo in ("lofu chill", "lofi chlil", "lpfi chill", "lofi chilll"):
        page = search(api, q=typo)
        assert page["fuzzy"] is True and ids(page)[0] == chill, typo
    nothing = search(api, q="zzzzqqq")
    assert nothing == {"items": [], "next_cursor": None, "fuzzy": True}
    assert search(api, q="!!!")["fuzzy"] is False  # no words: a plain listing


async def test_search_covers_artist_description_tags_and_ranks_titles_first(
    api: Any, soundhive_services: Any, kernel: Any
) -> None:
    _, owner = user(api, "ranker")
    in_title = add_track(soundhive_services, owner, "Ocean Letters")
    in_tags = add_track(soundhive_services, owner, "Untitled", tags=("ocean",))
    in_text = add_track(soundhive_services, owner, "Demo 3", description="Recorded by the ocean.")
    by_artist = add_track(soundhive_services, owner, "Morning", artist="Ocean Trio")
    add_track(soundhive_services, owner, "Unrelated")
    await reindex(kernel)
    order = ids(search(api, q="ocean"))
    assert set(order) == {in_title, in_tags, in_text, by_artist}
    assert order[0] == in_title and order[-1] == in_text  # title first, description last
    assert ids(search(api, q="ocean trio")) == [by_artist]


async def test_filters_tag_mood_and_bpm(api: Any, soundhive_services: Any, kernel: Any) -> None:
    _, owner = user(api, "filters")
    slow = add_track(soundhive_services, owner, "Rain A", tags=("lofi",), mood="calm", bpm=70)
    fast = add_track(
        soundhive_services, owner, "Rain B", tags=("lofi", "edm"), mood="party", bpm=128
    )
    other = add_track(soundhive_services, owner, "Rain C", tags=("jazz",), mood="calm", bpm=95)
    await reindex(kernel)
    for params in ({}, {"q": "rain"}):  # listing and relevance take different paths
        assert set(ids(search(api, tag="lofi", **params))) == {slow, fast}
        assert ids(search(api, tag=["lofi", "edm"], **params)) == [fast]
        assert ids(search(api, tag="#LoFi", mood="calm", **params)) == [slow]
        assert set(ids(search(api, mood="calm", **params))) == {slow, other}
        assert set(ids(search(api, bpm_min=90, **params))) == {fast, other}
        assert ids(search(api, bpm_min=90, bpm_max=100, **params)) == [other]
        assert ids(search(api, tag="nobody-uses-this", **params)) == []
    problem(api.get(f"{API}/search/tracks", params={"mood": "grumpy"}), 422, "VALIDATION_FAILED")
    bad = {"bpm_min": 120, "bpm_max": 90}
    problem(api.get(f"{API}/search/tracks", params=bad), 422, "VALIDATION_FAILED")
    long = {"q": "x" * 201}
    problem(api.get(f"{API}/search/tracks", params=long), 422, "VALIDATION_FAILED")


async def test_every_sort_pages_by_keyset(api: Any, soundhive_services: Any, kernel: Any) -> None:
    _, owner = user(api, "sorter")
    start = datetime.now(UTC) - timedelta(days=30)
    made = [
        add_track(
            soundhive_services,
            owner,
            f"Summer Song {n}",
            created_at=start + timedelta(hours=n),
            plays=(n * 7) % 5,
            likes=n % 3,
            trending=float(n % 4),
        )
        for n in range(11)
    ]
    await reindex(kernel)
    rows = {
        row[0]: row[1:]
        for row in sql(
            soundhive_services,
            "SELECT id::text, created_at, play_count, like_count, trending_score FROM tracks",
        )
    }
    expected = {
        "latest": sorted(made, key=lambda t: (rows[t][0], t), reverse=True),
        "popular": sorted(made, key=lambda t: (rows[t][1], rows[t][2], t), reverse=True),
        "trending": sorted(made, key=lambda t: (rows[t][3], t), reverse=True),
    }
    for sort, order in expected.items():
        assert walk(api, "/search/tracks", 3, sort=sort) == order, sort
        assert walk(api, "/search/tracks", 4, sort=sort, q="summer song") == order, sort
    relevance = walk(api, "/search/tracks", 3, q="summer")
    assert sorted(relevance) == sorted(made) and len(relevance) == 11
    first = search(api, q="summer", limit=3)
    assert first["next_cursor"]
    other = {"q": "summer", "sort": "latest", "cursor": first["next_cursor"]}
    problem(api.get(f"{API}/search/tracks", params=other), 422, "INVALID_CURSOR")
    cursor = first["next_cursor"]
    forged = {"cursor": cursor[:10] + ("B" if cursor[10] == "A" else "A") + cursor[11:]}
    problem(api.get(f"{API}/search/tracks", params=forged), 422, "INVALID_CURSOR")


async def test_relevance_pages_skip_many_unlisted_matches(
    api: Any, soundhive_services: Any, kernel: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ranked ids are filtered for visibility after ranking: a run of private matches longer
    than the scan budget gives a short page whose cursor goes on, never a lost result."""
    from skills.tag_search_discovery import service

    monkeypatch.setattr(service, "RELEVANCE_ROUNDS", 1)  # the live server shares this process
    _, owner = user(api, "hoarder")
    for n in range(70):
        add_track(soundhive_services, owner, f"Echo {n}", visibility="private")
    public = {add_track(soundhive_services, owner, "Quiet", description=f"echo {n}") for n in "ab"}
    await reindex(kernel)
    first = search(api, q="echo", limit=5)
    assert first["items"] == [] and first["next_cursor"] and first["fuzzy"] is False
    rest = search(api, q="echo", limit=5, cursor=first["next_cursor"])
    assert set(ids(rest)) == public and rest["next_cursor"] is None


async def test_a_head_query_is_ranked_once_however_many_wait(
    api: Any, soundhive_services: Any, kernel: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Concurrent misses of one first page share a single ranking (no dogpile on expiry)."""
    import asyncio

    from skills.tag_search_discovery import service

    _, owner = user(api, "dogpile")
    track = add_track(soundhive_services, owner, "Crowded Word")
    await reindex(kernel)
    computed = 0
    original = service._search_page

    async def slow_page(*args: Any, **kwargs: Any) -> Any:
        nonlocal computed
        computed += 1
        await asyncio.sleep(0.3)  # the live server's loop: the other requests arrive meanwhile
        return await original(*args, **kwargs)

    monkeypatch.setattr(service, "_search_page", slow_page)
    with ThreadPoolExecutor(max_workers=6) as pool:
        pages = list(pool.map(lambda _: search(api, q="crowded"), range(6)))
    assert computed == 1 and all(ids(page) == [track] for page in pages)


async def test_private_unlisted_hidden_and_banned_never_listed(
    api: Any, soundhive_services: Any, kernel: Any
) -> None:
    _, owner = user(api, "owner")
    _, villain = user(api, "villain")
    shown = add_track(soundhive_services, owner, "Moon A", tags=("moon",), trending=5)
    add_track(soundhive_services, owner, "Moon B", tags=("moon",), visibility="private", trending=5)
    add_track(
        soundhive_services, owner, "Moon C", tags=("moon",), visibility="unlisted", trending=5
    )
    add_track(soundhive_services, owner, "Moon D", tags=("moon",), status="processing", trending=5)
    hidden = add_track(soundhive_services, owner, "Moon E", tags=("moon",), trending=5)
    banned = add_track(soundhive_services, villain, "Moon F", tags=("moon",), trending=5)
    await reindex(kernel)
    sql(soundhive_services, "UPDATE tracks SET is_hidden = true WHERE id = %s", hidden)
    sql(soundhive_services, "UPDATE user_profiles SET is_banned = true WHERE id = %s", villain)
    lists = [
        ("/search/tracks", {"q": "moon"}),
        ("/search/tracks", {"q": "mooon"}),  # fuzzy
        ("/search/tracks", {"tag": "moon", "sort": "trending"}),
        ("/tags/moon/tracks", {}),
        ("/discover/latest", {}),
        ("/discover/trending", {}),
    ]
    for path, params in lists:
        assert ids(listing(api, path, **params)) == [shown], path
    await reindex(kernel)  # counts are cached: the sweep refreshes them
    assert listing(api, "/tags")["items"] == [{"name": "moon", "track_count": 1}]
    sql(soundhive_services, "UPDATE user_profiles SET is_banned = false WHERE id = %s", villain)
    assert set(ids(listing(api, "/tags/moon/tracks"))) == {shown, banned}  # at once
    # a cached first page of a text search brings it back within 30 s
    assert ids(search(api, q="moon")) == [shown]
    await kernel.cache.invalidate_namespace("search")
    assert set(ids(search(api, q="moon"))) == {shown, banned}


async def test_first_pages_of_text_searches_are_cached_but_filtered_on_read(
    api: Any, soundhive_services: Any, kernel: Any
) -> None:
    _, owner = user(api, "popular")
    first = add_track(soundhive_services, owner, "Love Song")
    await reindex(kernel)
    assert ids(search(api, q="love")) == [first]
    second = add_track(soundhive_services, owner, "Love Again")
    await reindex(kernel)
    assert ids(search(api, q="LOVE")) == [first]  # same normalised query: the cached page
    assert set(ids(search(api, q="love", limit=5))) == {first, second}  # another page size
    keys = await kernel.cache.client.keys("sh:search:*")
    assert len(keys) == 2 and 0 < await kernel.cache.client.ttl(keys[0]) <= 30
    sql(soundhive_services, "UPDATE tracks SET is_hidden = true WHERE id = %s", first)
    assert search(api, q="love")["items"] == []  # hidden at once, even from the cache


async def test_list_items_are_the_tracks_own_view(
    api: Any, soundhive_services: Any, kernel: Any
) -> None:
    """Lists render their rows themselves (one statement, tags aggregated in SQL): an item of
    every list, cached or not, equals the track's own endpoint without ``stream_url`` (the
    signed cover URL may differ in its expiry second), tags in the owner's order."""
    from skills.tag_search_discovery.api import listable_reads

    svc = soundhive_services
    _, owner = user(api, "render")
    rich = add_track(
        svc, owner, "Harbor Lights", tags=("night", "lo-fi", "rain"), artist="Harbor",
        description="long\ntext", mood="dreamy", bpm=92.5, plays=41, likes=3, trending=2.0,
    )  # fmt: skip
    bare = add_track(svc, owner, "Harbor Fog", trending=1.0)
    sql(
        svc,
        "UPDATE tracks SET cover_key = %s, loudness_lufs = -14.2, sample_rate = 44100,"
        " channels = 2, bitrate = 320000, comment_count = 2, waveform = %s::jsonb WHERE id = %s",
        f"covers/{rich}.jpg",
        '{"samples_per_pixel": 256, "data": [-3, 4, -2, 9], "length": 2}',
        rich,
    )
    await reindex(kernel)

    def detail(track_id: str) -> dict[str, Any]:
        body: dict[str, Any] = api.get(f"{API}/tracks/{track_id}").json()
        assert body.pop("stream_url")
        return body

    def check(items: list[dict[str, Any]], expected: tuple[str, ...] = (rich, bare)) -> None:
        assert sorted(item["id"] for item in items) == sorted(expected)
        for item in items:
            view, cover = detail(item["id"]), item["cover_url"]
            assert (cover and cover.split("?")[0]) == (
                view["cover_url"] and view["cover_url"].split("?")[0]
            )
            assert item == {**view, "cover_url": cover}
            if item["id"] == rich:
                assert item["tags"] == ["night", "lo-fi", "rain"] and "sig=" in cover
                assert item["waveform"]["data"] == [-3, 4, -2, 9] and item["play_count"] == 41
            else:
                assert item["tags"] == [] and cover is None

    head = search(api, q="harbor")
    check(head["items"])
    check(search(api, q="harbor")["items"])  # the cached first page
    first = search(api, q="harbor", limit=1)
    check(first["items"] + search(api, q="harbor", limit=1, cursor=first["next_cursor"])["items"])
    for sort in ("latest", "popular", "trending"):
        check(search(api, q="harbor", sort=sort)["items"])
    check(listing(api, "/tags/night/tracks")["items"], (rich,))
    check(listing(api, "/search/tracks")["items"])
    check(listing(api, "/discover/latest")["items"])
    check(listing(api, "/discover/trending")["items"])
    async with kernel.db.session() as session:
        reads = await listable_reads(kernel, session, [uuid.UUID(bare), uuid.UUID(rich)])
    assert [r.model_dump(mode="json")["id"] for r in reads] == [bare, rich]
    dumped = [r.model_dump(mode="json") for r in reads]
    assert dumped[0] == detail(bare)
    assert {**dumped[1], "cover_url": None} == {**detail(rich), "cover_url": None}


async def test_tags_moods_and_tag_pages(api: Any, soundhive_services: Any, kernel: Any) -> None:
    _, owner = user(api, "tagger")
    first = add_track(soundhive_services, owner, "A", tags=("lofi", "night"))
    second = add_track(soundhive_services, owner, "B", tags=("lofi", "인디"))
    add_track(soundhive_services, owner, "C", tags=("lofi",), visibility="private")
    await reindex(kernel)  # also refreshes the cached tag counts
    counted = listing(api, "/tags")
    assert counted == {
        "items": [
            {"name": "lofi", "track_count": 2},
            {"name": "night", "track_count": 1},
            {"name": "인디", "track_count": 1},
        ],
        "next_cursor": None,
    }
    head = listing(api, "/tags", limit=1)
    assert [t["name"] for t in head["items"]] == ["lofi"] and head["next_cursor"]
    rest = listing(api, "/tags", limit=5, cursor=head["next_cursor"])
    assert [t["name"] for t in rest["items"]] == ["night", "인디"]
    assert set(ids(listing(api, "/tags/lofi/tracks"))) == {first, second}
    assert ids(listing(api, "/tags/%23LoFi/tracks", sort="trending")) == ids(
        listing(api, "/tags/lofi/tracks", sort="trending")
    )
    assert ids(listing(api, "/tags/인디/tracks")) == [second]
    problem(api.get(f"{API}/tags/nobody/tracks"), 404, "TAG_NOT_FOUND")
    moods = api.get(f"{API}/moods").json()["items"]
    assert [m["name"] for m in moods][:3] == ["calm", "chill", "dark"]
    assert all(m["description"] for m in moods) and len(moods) == 14


# -- trending ---------------------------------------------------------------------------------
def add_plays(services: Any, track_id: str, count: int, at: datetime) -> None:
    sql(
        services,
        "INSERT INTO play_history (user_id, track_id, played_at, played_ms, counted) "
        "SELECT NULL, %s, %s, 60000, true FROM generate_series(1, %s)",
        track_id,
        at,
        count,
    )


def add_like(services: Any, track_id: str, user_id: str, at: datetime) -> None:
    sql(
        services,
        "INSERT INTO likes (id, track_id, user_id, created_at) VALUES (%s, %s, %s, %s)",
        str(uuid.uuid4()),
        track_id,
        user_id,
        at,
    )


def expected_score(events: list[tuple[str, timedelta]], age: timedelta) -> float:
    """The README's formula, written out independently of the SQL."""
    activity = sum(
        WEIGHTS[kind] * 0.5 ** (ago / timedelta(hours=HALF_LIFE_HOURS)) for kind, ago in events
    )
    return activity / (1 + age / timedelta(days=AGE_SCALE_DAYS))


async def test_trending_job_scores_windowed_decayed_activity(
    api: Any, soundhive_services: Any, kernel: Any
) -> None:
    _, owner = user(api, "artist")
    _, fan = user(api, "fan")
    _, other_fan = user(api, "fan2")
    now = datetime.now(UTC)
    hour, day = timedelta(hours=1), timedelta(days=1)
    fresh = add_track(soundhive_services, owner, "Fresh", created_at=now - day)
    faded = add_track(soundhive_services, owner, "Faded", created_at=now - day)
    classic = add_track(soundhive_services, owner, "Classic", created_at=now - 100 * day)
    loved = add_track(soundhive_services, owner, "Loved", created_at=now - day)
    stale = add_track(soundhive_services, owner, "Stale", created_at=now - 20 * day, trending=5)
    add_plays(soundhive_services, fresh, 10, now - hour)
    add_plays(soundhive_services, faded, 10, now - 3 * day)
    add_plays(soundhive_services, classic, 10, now - hour)
    add_plays(soundhive_services, stale, 50, now - 8 * day)  # outside the 7-day window
    add_like(soundhive_services, loved, fan, now - hour)
    add_like(soundhive_services, loved, other_fan, now - 2 * hour)
    sql(
        soundhive_services,
        "INSERT INTO comments (id, track_id, author_id, body, created_at, updated_at) "
        "VALUES (%s, %s, %s, 'so good', %s, %s)",
        str(uuid.uuid4()), loved, fan, now - hour, now - hour,
    )  # fmt: skip
    await reindex(kernel)

    assert await compute_trending(kernel, now=now) == {"written": 5, "zeroed": 1}
    scores = dict(sql(soundhive_services, "SELECT id::text, trending_score FROM tracks"))
    expected = {
        fresh: expected_score([("play", hour)] * 10, day),
        faded: expected_score([("play", 3 * day)] * 10, day),
        classic: expected_score([("play", hour)] * 10, 100 * day),
        loved: expected_score([("like", hour), ("like", 2 * hour), ("comment", hour)], day),
        stale: 0.0,
    }
    assert scores == pytest.approx(expected, rel=1e-6)
    boosts = dict(sql(soundhive_services, "SELECT track_id::text, boost FROM track_search"))
    assert boosts == pytest.approx(expected, rel=1e-6)  # the mirror search ranks with
    # unchanged activity an instant later: nothing worth writing
    assert (await compute_trending(kernel, now=now + timedelta(seconds=60)))["written"] == 0

    order = [loved, fresh, classic, faded]
    assert sorted(expected, key=lambda t: -expected[t])[:4] == order
    assert ids(listing(api, "/discover/trending")) == order  # stale (score 0) is not trending
    assert ids(search(api, sort="trending"))[:4] == order
    assert walk(api, "/discover/trending", 3) == order


async def test_trending_is_cached_a_minute_but_never_shows_hidden_tracks(
    api: Any, soundhive_services: Any, kernel: Any
) -> None:
    _, owner = user(api, "cacher")
    now = datetime.now(UTC)
    first = add_track(soundhive_services, owner, "First")
    second = add_track(soundhive_services, owner, "Second")
    add_plays(soundhive_services, first, 3, now)
    add_plays(soundhive_services, second, 1, now)
    await compute_trending(kernel, now=now)
    assert ids(listing(api, "/discover/trending")) == [first, second]
    add_plays(soundhive_services, second, 10, now)
    assert ids(listing(api, "/discover/trending")) == [first, second]  # from the cache
    ttl = await kernel.cache.client.ttl(kernel.cache.key("trending", "20:"))
    assert 0 < ttl <= 60
    sql(soundhive_services, "UPDATE tracks SET is_hidden = true WHERE id = %s", first)
    assert ids(listing(api, "/discover/trending")) == [second]  # filtered on every read
    sql(soundhive_services, "UPDATE tracks SET is_hidden = false WHERE id = %s", first)
    await compute_trending(kernel, now=now)  # drops the cache
    assert ids(listing(api, "/discover/trending")) == [second, first]


async def test_latest_lists_newest_public_tracks(
    api: Any, soundhive_services: Any, kernel: Any
) -> None:
    _, owner = user(api, "newest")
    start = datetime.now(UTC) - timedelta(days=1)
    made = [
        add_track(soundhive_services, owner, f"T{n}", created_at=start + timedelta(minutes=n))
        for n in range(5)
    ]
    add_track(soundhive_services, owner, "Private", visibility="private")
    assert walk(api, "/discover/latest", 2) == made[::-1]


# -- keeping the index in step ----------------------------------------------------------------
async def test_sweep_indexes_what_no_event_announced(
    api: Any, soundhive_services: Any, kernel: Any
) -> None:
    _, owner = user(api, "sweeper")
    track = add_track(soundhive_services, owner, "Old Name", tags=("jazz",))
    assert search(api, q="old name")["items"] == []  # not indexed yet
    others = [add_track(soundhive_services, owner, f"Other {n}") for n in range(20)]
    swept = [(await sync_search(kernel, part=part))["indexed"] for part in range(SWEEP_PARTS)]
    assert sum(swept) == 1 + len(others)  # the job's slices cover every track exactly once
    sql(soundhive_services, "DELETE FROM tracks WHERE id = ANY(%s::uuid[])", others)
    assert ids(search(api, q="old name")) == [track]
    sql(
        soundhive_services,
        "UPDATE tracks SET title = '새 이름', mood = 'calm', updated_at = now() WHERE id = %s",
        track,
    )
    assert await reindex(kernel) == 1
    assert await reindex(kernel) == 0  # nothing stale any more
    assert ids(search(api, q="새 이름", mood="calm")) == [track]
    sql(soundhive_services, "DELETE FROM tracks WHERE id = %s", track)
    assert sql(soundhive_services, "SELECT count(*) FROM track_search") == [(0,)]


def test_search_index_follows_track_events(
    api: Any, soundhive_services: Any, real_worker: Any
) -> None:
    """Upload → ``track.uploaded`` → the worker indexes it; a PATCH re-indexes it."""
    headers, _ = user(api, "eve")
    track = ready_track(api, soundhive_services, headers, title="Aurora Borealis")["id"]
    wait_for(lambda: ids(search(api, q="aurora")) == [track], timeout=20)
    response = api.patch(
        f"{API}/tracks/{track}",
        json={"title": "Northern Lights", "tags": ["winter"]},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    wait_for(lambda: ids(search(api, q="northern winter")) == [track], timeout=20)
    assert search(api, q="aurora", limit=5)["items"] == []  # (limit 20 is a cached page)


# -- soundhive seed ---------------------------------------------------------------------------
def test_seed_generates_a_searchable_data_set(
    api: Any, soundhive_services: Any, soundhive_env: dict[str, str]
) -> None:
    env = {**os.environ, **soundhive_env}
    command = [sys.executable, "-m", "core.cli", "seed", "--tracks", "300", "--users", "20"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "seeded run" in done.stdout and "search index" in done.stdout  # the progress bar
    counts = sql(
        soundhive_services,
        "SELECT (SELECT count(*) FROM tracks), (SELECT count(*) FROM track_search), "
        "(SELECT count(*) FROM user_profiles), (SELECT count(*) FROM play_history), "
        "(SELECT count(*) FROM tracks WHERE trending_score > 0), "
        "(SELECT count(*) FROM track_tags)",
    )[0]
    assert counts[:4] == (300, 300, 20, 600) and counts[4] > 0 and counts[5] >= 300
    assert search(api, q="밤")["items"] or search(api, q="night")["items"]
    assert listing(api, "/discover/trending")["items"]
    assert sql(soundhive_services, "SELECT sum(play_count) FROM tracks") == [(600,)]


def test_seed_refuses_in_prod(soundhive_env: dict[str, str]) -> None:
    prod = {
        **os.environ,
        **soundhive_env,
        "SOUNDHIVE_ENV": "prod",
        "SOUNDHIVE_SKILLS_DISABLED": "dev-auth-issuer",
        "SOUNDHIVE_SECRET_KEY": "x" * 40,
        "SOUNDHIVE_CORS_ORIGINS": "https://soundhive.example",
    }
    command = [sys.executable, "-m", "core.cli", "seed", "--tracks", "10"]
    done = subprocess.run(command, env=prod, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "refusing to seed: SOUNDHIVE_ENV=prod" in done.stderr
