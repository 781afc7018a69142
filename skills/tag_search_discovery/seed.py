"""``soundhive seed``: a realistic demo/benchmark data set, generated inside PostgreSQL.

Rows come from ``INSERT … SELECT generate_series`` in chunks (no row ever crosses the wire),
ids are ``md5(kind, run, n)::uuid`` so plays and likes can point at tracks without a lookup,
and popularity is skewed (a few tracks get most plays, listeners keep to a taste group, so
co-likes mean something). Foreign-key triggers are skipped when the role may do so (every row
points at rows generated just before). Refused when ``SOUNDHIVE_ENV=prod``.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from skills.tag_search_discovery import seed_data as words

CHUNK = 50_000
TASTE_GROUPS = 50


def _pick(array: str, skew: str = "") -> str:
    """SQL: a random element of the array parameter ``array`` (``skew`` favours the front)."""
    return (
        f"(%({array})s::text[])[1 + floor(random(){skew} * cardinality(%({array})s::text[]))::int]"
    )


def _display_name(index: str) -> str:
    return (
        f"(%(first)s::text[])[1 + {index} %% cardinality(%(first)s::text[])] || "
        f"(%(stage)s::text[])[1 + ({index} / cardinality(%(first)s::text[])) "
        f"%% cardinality(%(stage)s::text[])]"
    )


USERS_SQL = f"""
INSERT INTO user_profiles (id, sub, handle, display_name, bio, created_at, updated_at)
SELECT md5('u' || %(run)s || i)::uuid, 'seed|' || %(run)s || '|' || i,
       'seed' || %(run)s || '_' || i, {_display_name("i")}, NULL,
       now() - random() * interval '730 days', now()
FROM generate_series(%(start)s::int, %(stop)s::int) AS i
"""  # nosec B608 - constant SQL fragments; every value is a bound parameter

TITLE_SQL = f"""
CASE WHEN lang < 0.5 THEN {_pick("ko_adj")} || ' ' || {_pick("ko_noun")}
          || CASE WHEN random() < 0.4 THEN ' ' || {_pick("ko_tail")} ELSE '' END
     WHEN lang < 0.85 THEN initcap({_pick("en_adj")} || ' ' || {_pick("en_noun")})
          || CASE WHEN random() < 0.12 THEN {_pick("en_suffix")} ELSE '' END
     ELSE initcap({_pick("en_noun")}) || ' ' || {_pick("ko_noun")}
END || CASE WHEN random() < 0.0002 THEN ' ' || {_pick("rare")} ELSE '' END
"""

TRACKS_SQL = f"""
INSERT INTO tracks (id, owner_id, title, artist_name, description, mood, visibility, status,
                    is_hidden, object_key, content_type, file_size, format, duration_ms,
                    sample_rate, channels, bitrate, bpm, loudness_lufs, created_at, updated_at,
                    ready_at)
SELECT md5('t' || %(run)s || i)::uuid, md5('u' || %(run)s || owner)::uuid,
       left({TITLE_SQL}, 200),
       CASE WHEN random() < 0.85 THEN {_display_name("owner")} END,
       CASE WHEN random() < 0.3
            THEN {_pick("ko_adj")} || ' ' || {_pick("ko_noun")} || {_pick("ko_desc")}
            WHEN random() < 0.5
            THEN {_pick("en_desc")} || ' ' || {_pick("en_adj")} || ' ' || {_pick("en_noun")} || '.'
       END,
       CASE WHEN random() < 0.85 THEN {_pick("moods")} END,
       CASE WHEN random() < 0.92 THEN 'public'
            WHEN random() < 0.5 THEN 'unlisted' ELSE 'private' END,
       CASE WHEN random() < 0.98 THEN 'ready'
            WHEN random() < 0.5 THEN 'processing' ELSE 'failed' END,
       random() < 0.003,
       'seed/' || %(run)s || '/' || i || '.mp3', 'audio/mpeg',
       (2000000 + random() * 8000000)::bigint, 'mp3', (90000 + random() * 270000)::int,
       44100, 2, 320000, round((60 + random() * 120)::numeric, 1)::float8,
       round((-20 + random() * 14)::numeric, 1)::float8, created, created, created
FROM (SELECT i, random() AS lang, 1 + floor(random() ^ 2 * %(users)s::int)::int AS owner,
             now() - random() ^ 1.5 * %(days)s::int * interval '1 day' AS created
      FROM generate_series(%(start)s::int, %(stop)s::int) AS i) AS s
"""  # nosec B608 - constant SQL fragments; every value is a bound parameter

TRACK_TAGS_SQL = """
INSERT INTO track_tags (track_id, tag_id, position)
SELECT md5('t' || %(run)s || i)::uuid,
       (%(tag_ids)s::int[])[1 + floor(random() ^ 2 * cardinality(%(tag_ids)s::int[]))::int], n
FROM generate_series(%(start)s::int, %(stop)s::int) AS i,
     LATERAL generate_series(0, floor(random() * 4)::int + i * 0) AS n  -- i: per track
ON CONFLICT (track_id, tag_id) DO NOTHING
"""

# a listener keeps to a taste group of tracks 70 % of the time: co-likes mean something
_TASTE_TRACK = f"""
CASE WHEN random() < 0.7
     THEN 1 + ((u %% {TASTE_GROUPS}) * (%(tracks)s::int / {TASTE_GROUPS})
               + floor(random() ^ 2 * (%(tracks)s::int / {TASTE_GROUPS}))::int) %% %(tracks)s::int
     ELSE 1 + floor(random() ^ 3 * %(tracks)s::int)::int END
"""

PLAYS_SQL = f"""
INSERT INTO play_history (user_id, track_id, played_at, played_ms, counted)
SELECT md5('u' || %(run)s || u)::uuid, md5('t' || %(run)s || ({_TASTE_TRACK}))::uuid,
       now() - random() ^ 2 * interval '30 days', (30000 + random() * 200000)::int, true
FROM (SELECT 1 + floor(random() * %(users)s::int)::int AS u
      FROM generate_series(%(start)s::int, %(stop)s::int)) AS s
"""  # nosec B608 - constant SQL fragments; every value is a bound parameter

LIKES_SQL = f"""
INSERT INTO likes (id, track_id, user_id, created_at)
SELECT gen_random_uuid(), md5('t' || %(run)s || ({_TASTE_TRACK}))::uuid,
       md5('u' || %(run)s || u)::uuid, now() - random() ^ 2 * interval '60 days'
FROM (SELECT 1 + floor(random() * %(users)s::int)::int AS u
      FROM generate_series(%(start)s::int, %(stop)s::int)) AS s
ON CONFLICT (track_id, user_id) DO NOTHING
"""  # nosec B608 - constant SQL fragments; every value is a bound parameter

COMMENTS_SQL = f"""
INSERT INTO comments (id, track_id, author_id, body, position_ms, created_at, updated_at)
SELECT gen_random_uuid(),
       md5('t' || %(run)s || (1 + floor(random() ^ 3 * %(tracks)s::int)::int))::uuid,
       md5('u' || %(run)s || (1 + floor(random() * %(users)s::int)::int))::uuid,
       {_pick("comments")},
       CASE WHEN random() < 0.5 THEN (random() * 180000)::int END, at, at
FROM (SELECT now() - random() ^ 2 * interval '30 days' AS at
      FROM generate_series(%(start)s::int, %(stop)s::int)) AS s
"""  # nosec B608 - constant SQL fragments; every value is a bound parameter

COUNTERS_SQL = [
    # one pass over tracks for the three counters (each rewrite of a row costs a new version)
    """WITH p AS (SELECT track_id, count(*) AS n FROM play_history WHERE counted GROUP BY 1),
            l AS (SELECT track_id, count(*) AS n FROM likes GROUP BY 1),
            c AS (SELECT track_id, count(*) AS n FROM comments GROUP BY 1),
            a AS (SELECT coalesce(p.track_id, l.track_id, c.track_id) AS id,
                         coalesce(p.n, 0) AS plays, coalesce(l.n, 0) AS likes,
                         coalesce(c.n, 0) AS comments
                  FROM p FULL JOIN l USING (track_id) FULL JOIN c USING (track_id))
       UPDATE tracks t SET play_count = a.plays, like_count = a.likes, comment_count = a.comments
       FROM a WHERE t.id = a.id
         AND (t.play_count, t.like_count, t.comment_count) <> (a.plays, a.likes, a.comments)""",
    """UPDATE user_profiles p SET tracks_count = c.n FROM
       (SELECT owner_id, count(*) AS n FROM tracks GROUP BY owner_id) c
       WHERE p.id = c.owner_id AND p.tracks_count <> c.n""",
]


def _chunks(total: int, size: int = CHUNK) -> Iterator[tuple[int, int]]:
    for start in range(1, total + 1, size):
        yield start, min(total, start + size - 1)


@contextmanager
def _progress() -> Iterator[Callable[[str, int], Callable[[int], None]]]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description:<14}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns) as bar:

        def step(name: str, total: int) -> Callable[[int], None]:
            task = bar.add_task(name, total=total)
            return lambda n: bar.advance(task, n)

        yield step


def seed(
    tracks: Annotated[int, typer.Option(min=1, help="Tracks to create.")] = 1_000_000,
    users: Annotated[int, typer.Option(min=1, help="Accounts owning and playing them.")] = 20_000,
    plays: Annotated[int | None, typer.Option(help="Plays (default: 2 per track).")] = None,
    likes: Annotated[int | None, typer.Option(help="Likes (default: 1 per track).")] = None,
    comments: Annotated[int | None, typer.Option(help="Comments (default: 1 per 10).")] = None,
    days: Annotated[int, typer.Option(min=1, help="Upload dates spread over days.")] = 365,
) -> None:
    """Demo data: accounts, Korean/English tracks with tags and moods, plays, likes, comments;
    then the search index and trending scores. Adds to what is there; refused in prod."""
    from core.settings import Settings

    settings = Settings()
    if settings.env == "prod":
        typer.echo("refusing to seed: SOUNDHIVE_ENV=prod", err=True)
        raise typer.Exit(2)
    if not settings.database_url:
        typer.echo("no database: set SOUNDHIVE_DATABASE_URL (or use 'soundhive dev')", err=True)
        raise typer.Exit(2)
    counts = {
        "plays": 2 * tracks if plays is None else plays,
        "likes": tracks if likes is None else likes,
        "comments": tracks // 10 if comments is None else comments,
    }
    started = time.monotonic()
    run = secrets.token_hex(3)
    _generate(settings, run=run, tracks=tracks, users=users, days=days, counts=counts)
    typer.echo(f"seeded run {run} in {time.monotonic() - started:.0f} s")


def _generate(
    settings: Any, *, run: str, tracks: int, users: int, days: int, counts: dict[str, int]
) -> None:
    import psycopg

    from core.db import async_url
    from core.kernel import Kernel
    from skills.music_streaming_basic.api import MOODS
    from skills.tag_search_discovery import indexer
    from skills.tag_search_discovery.trending import compute_trending

    url = async_url(settings.database_url).replace("postgresql+psycopg://", "postgresql://", 1)
    params: dict[str, Any] = {
        "run": run, "users": users, "tracks": tracks, "days": days,
        "ko_adj": words.KO_ADJ, "ko_noun": words.KO_NOUN, "en_adj": words.EN_ADJ,
        "en_noun": words.EN_NOUN, "ko_tail": words.KO_TAIL, "en_suffix": words.EN_SUFFIX,
        "rare": words.RARE,
        "first": words.FIRST_NAMES, "stage": words.STAGE_SUFFIX, "moods": list(MOODS),
        "ko_desc": words.KO_DESCRIPTION, "en_desc": words.EN_DESCRIPTION,
        "comments": words.COMMENTS,
    }  # fmt: skip
    with psycopg.connect(url, autocommit=True) as conn, _progress() as step:
        if conn.execute("SELECT to_regclass('track_search')").fetchone() == (None,):
            raise typer.BadParameter("the database is not migrated: run 'soundhive migrate'")
        # rows reference rows made just before: skip the FK triggers when allowed
        with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
            conn.execute("SET session_replication_role = replica")
        conn.execute("SET synchronous_commit = off")
        conn.execute(
            "INSERT INTO tags (name) SELECT unnest(%s::text[]) ON CONFLICT DO NOTHING",
            (words.TAGS,),
        )
        tag_ids: dict[str, int] = dict(
            conn.execute("SELECT name, id FROM tags WHERE name = ANY(%s)", (words.TAGS,))
        )
        params["tag_ids"] = [tag_ids[name] for name in words.TAGS]

        def fill(name: str, sql: str | list[str], total: int) -> None:
            advance = step(name, total)
            for start, stop in _chunks(total):
                for statement in [sql] if isinstance(sql, str) else sql:
                    conn.execute(statement, {**params, "start": start, "stop": stop})  # type: ignore[arg-type]
                advance(stop - start + 1)

        fill("accounts", USERS_SQL, users)
        fill("tracks + tags", [TRACKS_SQL, TRACK_TAGS_SQL], tracks)
        fill("plays", PLAYS_SQL, counts["plays"])
        fill("likes", LIKES_SQL, counts["likes"])
        fill("comments", COMMENTS_SQL, counts["comments"])
        advance = step("counters", len(COUNTERS_SQL))
        for statement in COUNTERS_SQL:
            conn.execute(statement)  # type: ignore[arg-type]
            advance(1)
        total = conn.execute("SELECT count(*) FROM tracks").fetchone()
        indexer.rebuild(url, progress=step("search index", int(total[0]) if total else 0))
        advance = step("trending", 1)
        asyncio.run(_trending(Kernel(settings), compute_trending))
        advance(1)
        advance = step("analyze", 1)
        conn.execute("ANALYZE")
        advance(1)


async def _trending(kernel: Any, compute: Any) -> None:
    try:
        await compute(kernel)
    finally:
        await kernel.aclose()
