"""Fan-out benchmark for notification-system (not part of the tests).

    python bench/bench_fanout.py [--followers 10000] [--threads 2] [--batch 1000]

On a scratch database (created, migrated and dropped here) it seeds an account with
``--followers`` followers in SQL, starts a real ``soundhive worker`` subprocess, emits one
``track.created`` through the outbox and relays it to the broker, then times how long until
every follower has its ``new_track`` notification. The fan-out runs exactly as in production:
the event actor enqueues ``fan_out`` jobs, each inserting one batch in its own transaction and
chaining the next.

PostgreSQL and Redis come from ``--database-url`` / ``--redis-url``, else
``SOUNDHIVE_TEST_DATABASE_URL`` / ``SOUNDHIVE_TEST_REDIS_URL``, else ``SOUNDHIVE_DATABASE_URL`` /
``SOUNDHIVE_REDIS_URL``. The Redis database doubles as the broker: use one no other worker
consumes from while this runs.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any


def _ensure_importable() -> None:
    """Let ``python bench/bench_fanout.py`` find the repository's packages."""
    root = str(Path(__file__).resolve().parents[1])
    if root not in sys.path:
        sys.path.insert(0, root)


def _env_url(kind: str) -> str | None:
    return os.environ.get(f"SOUNDHIVE_TEST_{kind}_URL") or os.environ.get(f"SOUNDHIVE_{kind}_URL")


def seed(url: str, followers: int) -> tuple[str, str]:
    """The star, its followers and one ready public track, in SQL; returns (star, track)."""
    import psycopg

    star, track = str(uuid.uuid4()), str(uuid.uuid4())
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO user_profiles (id, sub, handle, display_name, followers_count) "
            "VALUES (%s, 'star', 'star', 'Star', %s)",
            (star, followers),
        )
        conn.execute(
            "INSERT INTO user_profiles (id, sub, handle, display_name, following_count) "
            "SELECT gen_random_uuid(), 'fan-' || n, 'fan_' || n, 'Fan ' || n, 1 "
            "FROM generate_series(1, %s) AS n",
            (followers,),
        )
        conn.execute(
            "INSERT INTO follows (id, follower_id, following_id) "
            "SELECT gen_random_uuid(), id, %s FROM user_profiles WHERE id <> %s",
            (star, star),
        )
        conn.execute(
            "INSERT INTO tracks (id, owner_id, title, object_key, content_type, file_size, "
            "status, visibility, ready_at) VALUES (%s, %s, 'Big release', 'bench/none', "
            "'audio/mpeg', 1, 'ready', 'public', now())",
            (track, star),
        )
        conn.execute("ANALYZE")
    return star, track


def start_worker(env: dict[str, str], threads: int, redis_url: str) -> subprocess.Popen[bytes]:
    """``soundhive worker``; returns once it polls the broker (its heartbeat is in Redis)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    client.delete("soundhive-tasks:__heartbeats__")
    proc = subprocess.Popen(
        [sys.executable, "-m", "core.cli", "worker", "--processes", "1", "--threads", str(threads)],
        env=env,
    )
    deadline = time.monotonic() + 60
    while not client.zcard("soundhive-tasks:__heartbeats__"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the worker did not start")
        time.sleep(0.05)
    return proc


async def emit_and_relay(settings: Any, star: str, track: str) -> None:
    from core.events import emit, relay_pending
    from core.kernel import Kernel

    kernel = Kernel(settings)
    try:
        async with kernel.db.session() as session, session.begin():
            payload = {"track_id": track, "owner_id": star, "visibility": "public"}
            emit(session, "track.created", payload)
        assert await relay_pending(kernel) == 1
    finally:
        await kernel.aclose()


def wait_for_rows(url: str, track: str, expected: int, started: float) -> tuple[float, float]:
    """Poll until ``expected`` rows exist: (seconds to the first, seconds to the last)."""
    import psycopg

    first = None
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            row = conn.execute(
                "SELECT count(*) FROM notifications WHERE track_id = %s AND type = 'new_track'",
                (track,),
            ).fetchone()
            count = int(row[0]) if row else 0
            now = time.perf_counter() - started
            if count and first is None:
                first = now
            if count >= expected:
                return first or now, now
            if now > 600:
                raise RuntimeError(f"only {count} of {expected} rows after 10 minutes")
            time.sleep(0.02)


def run(args: argparse.Namespace) -> None:
    _ensure_importable()
    from core.kernel import Kernel
    from core.migrate import upgrade
    from core.settings import Settings
    from core.testing.services import fresh_database, plain_url

    admin_url, redis_url = args.database_url or _env_url("DATABASE"), args.redis_url
    redis_url = redis_url or _env_url("REDIS")
    if not admin_url or not redis_url:
        raise SystemExit("set --database-url and --redis-url (or SOUNDHIVE_TEST_*_URL)")
    with (
        fresh_database(admin_url, prefix="soundhive_bench") as url,
        tempfile.TemporaryDirectory(prefix="soundhive-bench-") as data_dir,
    ):
        env = {
            **os.environ,
            "SOUNDHIVE_ENV": "test",
            "SOUNDHIVE_DATABASE_URL": url,
            "SOUNDHIVE_REDIS_URL": redis_url,
            "SOUNDHIVE_BROKER_URL": redis_url,
            "SOUNDHIVE_DATA_DIR": data_dir,
            "SOUNDHIVE_LOG_LEVEL": "WARNING",
            "SOUNDHIVE_LOG_JSON": "false",
            "SOUNDHIVE_NOTIFICATIONS_FANOUT_BATCH": str(args.batch),
        }
        settings = Settings(  # the rest (e.g. SOUNDHIVE_SKILLS_DISABLED) from the environment
            _env_file=None,  # type: ignore[call-arg]
            env="test",
            database_url=url,
            redis_url=redis_url,
            broker_url=redis_url,
            data_dir=Path(data_dir),
        )
        started = time.perf_counter()
        upgrade(Kernel(settings))
        star, track = seed(plain_url(url), args.followers)
        print(
            f"scratch database migrated and seeded with {args.followers:,} followers "
            f"in {time.perf_counter() - started:.1f} s"
        )
        worker = start_worker(env, args.threads, redis_url)
        try:
            started = time.perf_counter()
            asyncio.run(emit_and_relay(settings, star, track))
            first, last = wait_for_rows(plain_url(url), track, args.followers, started)
        finally:
            worker.terminate()
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker.kill()
    jobs = math.ceil(args.followers / args.batch)
    print(
        f"\nfan-out of one new track to {args.followers:,} followers "
        f"({jobs} jobs of <= {args.batch:,} rows, 1 worker process x {args.threads} threads)"
    )
    print(f"  first notification after {first * 1000:8.0f} ms")
    print(f"  all notifications after  {last * 1000:8.0f} ms")
    print(f"  throughput               {args.followers / last:8,.0f} rows/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--followers", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=1000, help="followers per fan_out job")
    parser.add_argument("--threads", type=int, default=2, help="worker threads")
    parser.add_argument("--database-url", help="a PostgreSQL URL allowed to create databases")
    parser.add_argument("--redis-url", help="Redis for cache and broker")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
