"""Home-feed benchmark: fan-out-on-read query strategies over 1,000,000 tracks (not a test).

    .venv/bin/python bench/bench_feed.py --database-url postgresql://postgres@127.0.0.1:5432/scratch_feed

Creates the scratch database named in the URL (it must not exist yet, unless ``--reuse``),
builds the five tables from the models, seeds with ``generate_series`` (about half a minute
on 2 cores): 20,000 owners with a skewed number of tracks (a few prolific accounts, many
quiet ones), 1 % banned and 1 % deleted; 3 % processing, 2 % failed, 15 % unlisted or private,
0.5 % hidden; 200,000 other follows. Two callers follow 1,000 accounts each:

* ``typical`` — random accounts that post regularly;
* ``stale`` — accounts whose tracks are all more than two years old (the worst case for
  walking the global ``created_at`` index).

For each caller, the first page and a deep page (``--deep`` items in), each strategy is timed
(p50 / p95 over ``--runs`` runs, after warm-up) and its ``EXPLAIN (ANALYZE, BUFFERS)`` summary
printed (``--plans`` prints whole plans). Everything runs twice: with today's indexes, then
with the partial listable index the README asks music-streaming-basic to add. The database is
dropped at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

PARTIAL_INDEX = (
    "CREATE INDEX ix_tracks_listable_owner ON tracks (owner_id, created_at DESC, id DESC) "
    "WHERE status = 'ready' AND visibility = 'public' AND is_hidden IS false"
)
CALLERS = {"typical": "user-0", "stale": "user-stale"}
LISTABLE = (
    "t.status = 'ready' AND t.visibility = 'public' AND t.is_hidden IS false "
    "AND p.deleted_at IS NULL AND p.is_banned IS false"
)
FOLLOWEES = (
    "SELECT f.following_id FROM follows f JOIN user_profiles fp ON fp.id = f.following_id "
    "WHERE f.follower_id = %(me)s AND fp.deleted_at IS NULL AND fp.is_banned IS false"
)
AFTER = "(t.created_at, t.id) < (%(at)s, %(id)s)"
ORDER = "ORDER BY t.created_at DESC, t.id DESC"

STRATEGIES: dict[str, str] = {
    # What followee_ids_query's docstring suggests: one big IN and a sort, or the planner
    # walking ix_tracks_created_at newest first and filtering by owner.
    "in_sort": f"""
        SELECT t.* FROM tracks t JOIN user_profiles p ON p.id = t.owner_id
        WHERE t.owner_id IN ({FOLLOWEES}) AND {LISTABLE} AND {AFTER}
        {ORDER} LIMIT %(n)s""",
    # Per followee, the newest n rows off ix_tracks_owner_created, whole rows.
    "lateral_rows": f"""
        SELECT t.* FROM ({FOLLOWEES}) fo CROSS JOIN LATERAL (
            SELECT t.* FROM tracks t JOIN user_profiles p ON p.id = t.owner_id
            WHERE t.owner_id = fo.following_id AND {LISTABLE} AND {AFTER}
            {ORDER} LIMIT %(n)s) t
        {ORDER} LIMIT %(n)s""",
    # One step: per followee the newest n keys (index-only with the partial index), then
    # whole rows for the n survivors. n entries per followee.
    "lateral_keys": f"""
        SELECT t.* FROM tracks t JOIN (
            SELECT t.created_at, t.id FROM (SELECT following_id FROM follows
                WHERE follower_id = %(me)s) fo
            JOIN user_profiles p ON p.id = fo.following_id
            CROSS JOIN LATERAL (SELECT t.created_at, t.id FROM tracks t
                WHERE t.owner_id = p.id AND {LISTABLE} AND {AFTER} {ORDER} LIMIT %(n)s) t
            {ORDER} LIMIT %(n)s) k ON k.id = t.id
        {ORDER}""",
}
SKILL = "skill"
"""The skill's own statement (repository.page_query): the newest track of every followee
first, then n keys from the n freshest followees only, then whole rows. The top n can only
come from those followees, so it reads one entry per followee plus n² entries."""


def _ensure_importable() -> None:
    """Let ``python bench/bench_feed.py`` find the repository's packages."""
    root = str(Path(__file__).resolve().parents[1])
    if root not in sys.path:
        sys.path.insert(0, root)


def _plain(url: str) -> str:
    for prefix in ("postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


def _user_id(name: str) -> uuid.UUID:
    """Seeded ids are ``md5(name)``, so the bench can name callers without a lookup."""
    import hashlib

    return uuid.UUID(hashlib.md5(name.encode()).hexdigest())


# -- database lifecycle and seeding ---------------------------------------------------------
@contextmanager
def scratch_database(url: str, *, reuse: bool, keep: bool) -> Iterator[bool]:
    """Create the database named in ``url`` (yield True if it needs seeding); drop it after."""
    from psycopg import sql

    base, name = url.rsplit("/", 1)
    if not name or name in ("postgres", "template0", "template1"):
        raise SystemExit("name a scratch database in --database-url, e.g. …/scratch_feed")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists and not reuse:
            raise SystemExit(f"database {name} exists; pass --reuse to bench it as it is")
        if not exists:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield not exists
    finally:
        if not keep:
            with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
            print(f"dropped {name}")


def create_schema(url: str) -> None:
    """The five tables the feed touches, with the models' own indexes."""
    from sqlalchemy import create_engine
    from sqlmodel import SQLModel

    import skills.music_streaming_basic.models
    import skills.user_follow_system.models
    import skills.user_profile.models  # noqa: F401  (importing registers the tables)

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    names = ("user_profiles", "follows", "tracks", "tags", "track_tags")
    SQLModel.metadata.create_all(engine, tables=[SQLModel.metadata.tables[n] for n in names])
    engine.dispose()


SEED = [
    "SELECT setseed(0.42)",
    # owners 1..20000; 0 is the typical caller; ~1 % banned, ~1 % deleted
    """INSERT INTO user_profiles (id, sub, handle, display_name, is_banned, deleted_at)
       SELECT md5('user-' || n)::uuid, 'user-' || n, 'user' || n, 'User ' || n,
              mod(n, 97) = 5, CASE WHEN mod(n, 101) = 7 THEN now() END
       FROM generate_series(0, %(owners)s) AS n""",
    """INSERT INTO user_profiles (id, sub, handle, display_name)
       VALUES (md5('user-stale')::uuid, 'user-stale', 'userstale', 'Stale')""",
    # owner = 1 + floor(owners * random()^2): owner 1 has ~7,000 tracks, the last ones ~25;
    # the last 5 % of owners stopped posting two years ago
    """INSERT INTO tracks (id, owner_id, title, object_key, content_type, file_size, status,
                           visibility, is_hidden, created_at, updated_at, ready_at, duration_ms)
       SELECT gen_random_uuid(), md5('user-' || o)::uuid, 'Track ' || g,
              'tracks/' || g || '.mp3', 'audio/mpeg', 4000000,
              CASE WHEN r1 < 0.95 THEN 'ready' WHEN r1 < 0.98 THEN 'processing' ELSE 'failed' END,
              CASE WHEN r2 < 0.85 THEN 'public' WHEN r2 < 0.95 THEN 'unlisted'
                   ELSE 'private' END,
              r3 < 0.005, ts, ts, ts, 180000
       FROM (SELECT g, o, random() AS r1, random() AS r2, random() AS r3,
                    CASE WHEN o > %(active)s
                         THEN now() - interval '730 days' - random() * interval '365 days'
                         ELSE now() - random() * interval '730 days' END AS ts
             FROM (SELECT g, 1 + floor(%(owners)s * power(random(), 2))::int AS o
                   FROM generate_series(1, %(tracks)s) AS g) s) s2""",
    """INSERT INTO follows (id, follower_id, following_id, created_at)
       SELECT gen_random_uuid(), md5('user-0')::uuid, md5('user-' || n)::uuid,
              now() - random() * interval '300 days'
       FROM (SELECT n FROM generate_series(1, %(active)s) n
             ORDER BY random() LIMIT %(follows)s) s""",
    """INSERT INTO follows (id, follower_id, following_id, created_at)
       SELECT gen_random_uuid(), md5('user-stale')::uuid, md5('user-' || n)::uuid,
              now() - random() * interval '300 days'
       FROM generate_series(%(owners)s - %(follows)s + 1, %(owners)s) n""",
    """INSERT INTO follows (id, follower_id, following_id, created_at)
       SELECT gen_random_uuid(), md5('user-' || a)::uuid, md5('user-' || b)::uuid,
              now() - random() * interval '300 days'
       FROM (SELECT DISTINCT 1 + floor(random() * %(owners)s)::int AS a,
                             1 + floor(random() * %(owners)s)::int AS b
             FROM generate_series(1, 200000)) s
       WHERE a <> b""",
]


def seed(url: str, *, tracks: int, owners: int, follows: int) -> None:
    params = {"tracks": tracks, "owners": owners, "follows": follows}
    params["active"] = owners - max(follows, owners // 20)
    started = time.perf_counter()
    create_schema(url)
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in SEED:
            conn.execute(statement, params if "%(" in statement else None)
        conn.execute("VACUUM ANALYZE")  # statistics, and the visibility map index-only scans need
        size = conn.execute("SELECT pg_size_pretty(pg_total_relation_size('tracks'))").fetchone()
    took = time.perf_counter() - started
    print(
        f"seeded {tracks:,} tracks / {owners:,} owners in {took:.1f} s (tracks: {size and size[0]})"
    )


# -- measuring ------------------------------------------------------------------------------
def skill_sql(me: uuid.UUID, after: tuple[datetime, uuid.UUID] | None, n: int) -> tuple[str, Any]:
    """The skill's statement as psycopg gets it (SQL with placeholders, raw parameters)."""
    from sqlalchemy.dialects.postgresql.psycopg import dialect

    from skills.activity_feed.repository import page_query

    compiled = page_query(me, after=after, limit=n).compile(dialect=dialect())
    return compiled.string, compiled.params


def statement(strategy: str, me: uuid.UUID, after: Any, n: int) -> tuple[str, Any]:
    if strategy == SKILL:
        return skill_sql(me, after, n)
    at, last = after if after else (datetime.fromisoformat("9999-01-01T00:00:00+00:00"), None)
    query = STRATEGIES[strategy]
    if after is None:  # first page: no keyset clause at all, as the skill does
        query = query.replace(f"AND {AFTER}", "")
    return query, {"me": me, "at": at, "id": last, "n": n}


def explain(conn: psycopg.Connection[Any], query: str, params: Any) -> list[str]:
    rows = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + query, params).fetchall()
    return [row[0] for row in rows]


def summary(plan: list[str]) -> str:
    """Root node, its buffers and the execution time of an EXPLAIN ANALYZE."""
    root = plan[0].split("  (")[0].strip()
    buffers = next((line.strip() for line in plan if "Buffers: shared" in line), "")
    executed = next((line.strip() for line in plan if line.startswith("Execution Time")), "")
    return f"{root:<12} {buffers:<44} {executed}"


def timings(run: Callable[[], Any], runs: int) -> tuple[float, float]:
    """(p50, p95) in ms after two warm-up runs."""
    run(), run()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.95))]


def deep_position(conn: psycopg.Connection[Any], me: uuid.UUID, depth: int) -> Any:
    """The keyset position ``depth`` items into ``me``'s feed (as a client would reach it)."""
    query, params = skill_sql(me, None, depth)
    rows = conn.execute(query, params).fetchall()
    return (rows[-1].created_at, rows[-1].id) if rows else None


async def skill_end_to_end(url: str, me: uuid.UUID, after: Any, n: int, runs: int) -> Any:
    """The repository through an AsyncSession in a transaction, as the service runs it."""
    from core.db import Database
    from skills.activity_feed import repository as repo

    db = Database(url, pool_size=1)
    samples = []
    async with db.session() as session:
        for i in range(runs + 2):
            started = time.perf_counter()
            async with session.begin():
                await repo.page(session, me, after=after, limit=n)
            if i >= 2:
                samples.append((time.perf_counter() - started) * 1000)
    await db.dispose()
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.95))]


def explain_generic(conn: psycopg.Connection[Any], query: str, params: dict[str, Any]) -> list[str]:
    """EXPLAIN ANALYZE of the statement psycopg prepared for ``query`` (generic plan)."""
    import re

    from psycopg import sql

    row = conn.execute(
        "SELECT name FROM pg_prepared_statements ORDER BY prepare_time DESC LIMIT 1"
    ).fetchone()
    assert row is not None, "psycopg did not prepare the statement"
    name = row[0]
    order = list(dict.fromkeys(re.findall(r"%\((\w+)\)s", query)))  # psycopg's $n order
    call = sql.SQL("EXPLAIN (ANALYZE, BUFFERS) EXECUTE {}({})").format(
        sql.Identifier(name), sql.SQL(", ").join(sql.Literal(params[key]) for key in order)
    )
    return [row[0] for row in conn.execute(call).fetchall()]


def run_case(
    conn: psycopg.Connection[Any], query: str, params: Any, runs: int, *, generic: bool
) -> tuple[float, float, list[str]]:
    """p50, p95 and the plan of one statement; ``generic`` runs it as a prepared statement
    with the generic plan PostgreSQL switches to after five executions (own connection)."""
    if not generic:
        p50, p95 = timings(lambda: conn.execute(query, params).fetchall(), runs)
        return p50, p95, explain(conn, query, params)
    with psycopg.connect(conn.info.dsn, autocommit=True) as own:
        own.execute("SET plan_cache_mode = force_generic_plan")
        p50, p95 = timings(lambda: own.execute(query, params, prepare=True).fetchall(), runs)
        return p50, p95, explain_generic(own, query, params)


def measure(url: str, args: argparse.Namespace, label: str) -> None:
    from psycopg.rows import namedtuple_row

    print(f"\n== {label}")
    print(f"{'caller':<8} {'page':<6} {'strategy':<14} {'p50 ms':>8} {'p95 ms':>8}  explain")
    n = args.limit + 1  # the service asks one more to know whether a next page exists
    with psycopg.connect(url, autocommit=True, row_factory=namedtuple_row) as conn:
        conn.execute("SET plan_cache_mode = force_custom_plan")
        for caller, name in CALLERS.items():
            me = _user_id(name)
            for page, after in (("first", None), ("deep", deep_position(conn, me, args.deep))):
                for strategy in [*STRATEGIES, SKILL, SKILL + "_generic"]:
                    generic = strategy.endswith("_generic")
                    query, params = statement(strategy.removesuffix("_generic"), me, after, n)
                    slow = strategy == "in_sort" and caller == "stale"  # seconds per run
                    runs = max(3, args.runs // 10) if slow else args.runs
                    p50, p95, plan = run_case(conn, query, params, runs, generic=generic)
                    print(
                        f"{caller:<8} {page:<6} {strategy:<14} {p50:8.2f} {p95:8.2f}  "
                        f"{summary(plan)}"
                    )
                    if args.plans:
                        print("\n".join("    " + row for row in plan))
                e2e = asyncio.run(skill_end_to_end(url, me, after, n, args.runs))
                print(f"{caller:<8} {page:<6} {'skill via ORM':<14} {e2e[0]:8.2f} {e2e[1]:8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True, help="…/<scratch database name>")
    parser.add_argument("--tracks", type=int, default=1_000_000)
    parser.add_argument("--owners", type=int, default=20_000)
    parser.add_argument("--follows", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--limit", type=int, default=20, help="page size")
    parser.add_argument("--deep", type=int, default=10_000, help="items before the deep page")
    parser.add_argument("--plans", action="store_true", help="print whole EXPLAIN plans")
    parser.add_argument("--reuse", action="store_true", help="bench an existing database")
    parser.add_argument("--keep", action="store_true", help="do not drop the database")
    args = parser.parse_args()
    _ensure_importable()
    url = _plain(args.database_url)
    with scratch_database(url, reuse=args.reuse, keep=args.keep) as fresh:
        if fresh:
            seed(url, tracks=args.tracks, owners=args.owners, follows=args.follows)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DROP INDEX IF EXISTS ix_tracks_listable_owner")
        measure(url, args, "today's indexes (ix_tracks_owner_created, ix_tracks_created_at)")
        with psycopg.connect(url, autocommit=True) as conn:
            started = time.perf_counter()
            conn.execute(PARTIAL_INDEX)
            conn.execute("VACUUM ANALYZE tracks")
            took = time.perf_counter() - started
        measure(url, args, f"+ partial listable index (built in {took:.1f} s)")


if __name__ == "__main__":
    main()
