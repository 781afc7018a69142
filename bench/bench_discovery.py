"""Search and trending benchmark on a seeded catalogue (not part of the tests).

    python bench/bench_discovery.py [--tracks 1000000] [--users 20000] [--requests 400]
                                    [--concurrency 8] [--seconds 30] [--workers 1] [--reseed]

Uses (and creates, migrates and seeds with ``soundhive seed`` when it holds fewer tracks) the
database ``--database-url`` (default ``soundhive_bench_discovery`` on the server of
``SOUNDHIVE_TEST_DATABASE_URL`` or 127.0.0.1:5432), starts ``soundhive serve`` on a loopback
port, and loads each scenario with an httpx client (``--concurrency`` requests in flight,
``--requests`` per scenario or ``--seconds``, whichever ends first, after a short warm-up).
Prints the first (uncached) request and p50/p95/p99 per scenario beside the bare ``/healthz``
baseline of the same run, so the numbers read as "what the endpoint adds". Redis is an
embedded Valkey started for the run (nobody else flushes it), or ``--redis-url`` (flushed
first). The load generator shares the machine's cores with the server and PostgreSQL:
compare rows with each other, not with wrk figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
BENCH_DB = "soundhive_bench_discovery"


@dataclass(frozen=True)
class Scenario:
    name: str
    path: str
    params: dict[str, Any]
    headers: dict[str, str] | None = None


SCENARIOS = [
    Scenario("baseline /healthz", "/healthz", {}),
    Scenario("search: common word (밤)", "/api/v1/search/tracks", {"q": "밤"}),
    Scenario("search: common word (love)", "/api/v1/search/tracks", {"q": "love"}),
    Scenario("search: rare word", "/api/v1/search/tracks", {"q": "zephyrine"}),
    Scenario("search: typo (midnihgt drive)", "/api/v1/search/tracks", {"q": "midnihgt drive"}),
    Scenario("search: Korean phrase", "/api/v1/search/tracks", {"q": "잔잔한 밤"}),
    Scenario("search: tag filter", "/api/v1/search/tracks", {"tag": "lofi"}),
    Scenario("search: word + tag", "/api/v1/search/tracks", {"q": "night", "tag": "lofi"}),
    Scenario("search: sort=trending", "/api/v1/search/tracks", {"q": "night", "sort": "trending"}),
    Scenario("discover/trending", "/api/v1/discover/trending", {}),
    Scenario("discover/latest", "/api/v1/discover/latest", {}),
    Scenario("tags/lofi/tracks", "/api/v1/tags/lofi/tracks", {}),
    Scenario("baseline /healthz (again)", "/healthz", {}),
]


def _personal(env: dict[str, str]) -> list[Scenario]:
    """Recommendations for the seeded listener with the most likes (a dev token), and the
    similar tracks of the most liked track. Both are cached per user/track for 5 minutes:
    the "first" column is the uncached computation."""
    import psycopg

    with psycopg.connect(env["SOUNDHIVE_DATABASE_URL"]) as conn:
        sub = conn.execute(
            "SELECT p.sub FROM user_profiles p JOIN likes l ON l.user_id = p.id "
            "GROUP BY p.sub ORDER BY count(*) DESC LIMIT 1"
        ).fetchone()
        track = conn.execute(
            "SELECT id FROM tracks WHERE status = 'ready' AND visibility = 'public' "
            "AND NOT is_hidden ORDER BY like_count DESC LIMIT 1"
        ).fetchone()
    if sub is None or track is None:
        return []
    mint = [sys.executable, "-m", "core.cli", "token", "--sub", sub[0]]
    token = _sh(mint, env, capture_output=True).stdout.strip()
    return [
        Scenario(
            "recommendations", "/api/v1/recommendations", {}, {"Authorization": f"Bearer {token}"}
        ),
        Scenario("tracks/{id}/similar", f"/api/v1/tracks/{track[0]}/similar", {}),
    ]


def _sh(command: list[str], env: dict[str, str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, env=env, cwd=ROOT, text=True, check=True, **kwargs)


def _database(args: argparse.Namespace) -> str:
    """The bench database URL, created on the server when missing."""
    if args.database_url:
        return str(args.database_url)
    import psycopg
    from sqlalchemy.engine import make_url

    admin = os.environ.get("SOUNDHIVE_TEST_DATABASE_URL") or DEFAULT_ADMIN
    with psycopg.connect(admin, autocommit=True) as conn:
        if args.reseed:
            conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (BENCH_DB,))
        if exists.fetchone() is None:
            conn.execute(f'CREATE DATABASE "{BENCH_DB}"')
    return make_url(admin).set(database=BENCH_DB).render_as_string(hide_password=False)


def _prepare(args: argparse.Namespace, env: dict[str, str]) -> None:
    import psycopg

    soundhive = [sys.executable, "-m", "core.cli"]
    _sh([*soundhive, "migrate"], env, capture_output=True)
    with psycopg.connect(env["SOUNDHIVE_DATABASE_URL"]) as conn:
        row = conn.execute("SELECT count(*) FROM tracks").fetchone()
    have = int(row[0]) if row else 0
    if have < args.tracks:
        print(f"seeding {args.tracks - have} tracks ({have} there) …", flush=True)
        seed = ["seed", "--tracks", str(args.tracks - have), "--users", str(args.users)]
        _sh([*soundhive, *seed], env)
    else:
        print(f"reusing {have} tracks in {env['SOUNDHIVE_DATABASE_URL']}", flush=True)


def _flush(redis_url: str) -> None:
    import redis

    redis.Redis.from_url(redis_url).flushdb()


def _serve(env: dict[str, str], port: int, workers: int) -> subprocess.Popen[bytes]:
    import httpx

    command = [sys.executable, "-m", "core.cli", "serve", "--port", str(port)]
    server = subprocess.Popen([*command, "--workers", str(workers)], env=env, cwd=ROOT)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.terminate()
    raise SystemExit("the server did not start")


async def _load(base: str, scenario: Scenario, args: argparse.Namespace) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    errors = 0
    budget = args.requests
    limits = httpx.Limits(max_connections=args.concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        t0 = time.perf_counter()
        first = await client.get(scenario.path, params=scenario.params, headers=scenario.headers)
        first_ms = (time.perf_counter() - t0) * 1000
        assert first.status_code == 200, first.text
        body = first.json()
        found = len(body.get("items", [])) if isinstance(body, dict) else 0
        for _ in range(min(20, budget)):  # warm-up: caches, pools, plans
            await client.get(scenario.path, params=scenario.params, headers=scenario.headers)
        deadline = time.perf_counter() + args.seconds
        started = time.perf_counter()

        async def worker() -> None:
            nonlocal budget, errors
            while budget > 0 and time.perf_counter() < deadline:
                budget -= 1
                t0 = time.perf_counter()
                response = await client.get(
                    scenario.path, params=scenario.params, headers=scenario.headers
                )
                latencies.append(time.perf_counter() - t0)
                errors += response.status_code != 200

        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "name": scenario.name,
        "first": first_ms,
        "n": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50": cuts[49] * 1000,
        "p95": cuts[94] * 1000,
        "p99": cuts[98] * 1000,
        "errors": errors,
        "items": found,
        "fuzzy": body.get("fuzzy") if isinstance(body, dict) else None,
    }


def _table(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    base = rows[0]["p50"]
    print(
        f"\n{args.tracks} tracks, concurrency {args.concurrency}, "
        f"≤{args.requests} requests or {args.seconds} s per row, {args.workers} API worker(s)"
    )
    columns = ("first ms", "n", "req/s", "p50 ms", "p95 ms", "p99 ms", "×base p50", "err")
    print(f"{'scenario':<30}" + "".join(f"{c:>10}" for c in columns) + "  items")
    for row in rows:
        numbers = (row["rps"], row["p50"], row["p95"], row["p99"])
        cells = f"{row['first']:>10.1f}{row['n']:>10}" + "".join(f"{v:>10.1f}" for v in numbers)
        fuzzy = " (fuzzy)" if row["fuzzy"] else ""
        tail = f"{row['p50'] / base:>10.1f}{row['errors']:>10}  {row['items']}{fuzzy}"
        print(f"{row['name']:<30}{cells}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracks", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--database-url")
    parser.add_argument("--redis-url", help="default: an embedded Valkey for this run")
    parser.add_argument("--reseed", action="store_true", help="drop the bench database first")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    data_dir = tempfile.mkdtemp(prefix="soundhive-bench-")  # the dev issuer's key, local storage
    valkey = None
    if not args.redis_url:
        from core.embedded import start_valkey

        valkey, args.redis_url = start_valkey()
    env = {
        **os.environ,
        "SOUNDHIVE_ENV": "dev",
        "SOUNDHIVE_DATABASE_URL": _database(args),
        "SOUNDHIVE_REDIS_URL": args.redis_url,
        "SOUNDHIVE_RATE_LIMIT": "100000000/minute",
        "SOUNDHIVE_LOG_LEVEL": "WARNING",
        "SOUNDHIVE_DATA_DIR": data_dir,
    }
    try:
        _prepare(args, env)
        _flush(env["SOUNDHIVE_REDIS_URL"])  # "first" is then really uncached
        server = _serve(env, args.port, args.workers)
        try:
            base = f"http://127.0.0.1:{args.port}"
            scenarios = [*SCENARIOS[:-1], *_personal(env), SCENARIOS[-1]]
            rows = [asyncio.run(_load(base, scenario, args)) for scenario in scenarios]
        finally:
            server.terminate()
            server.wait(timeout=30)
    finally:
        if valkey is not None:
            valkey.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    _table(rows, args)


if __name__ == "__main__":
    main()
