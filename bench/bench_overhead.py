"""Where a request's CPU goes: the cost of each building block, measured alone (not a test).

    .venv/bin/python bench/bench_overhead.py            # 2,000 rounds of each, Redis DB 15

``bench/load.py`` gives CPU milliseconds per request; this splits them. Each block runs
``--rounds`` times in one process after a warm-up, and the table gives process CPU time per
call (``time.process_time``: what the API worker itself spends, client side, including the
event loop's share of each round trip; the servers' own CPU is not counted):

* a bare ASGI round trip through FastAPI (an ``async def`` route returning a dict), through
  FastAPI's floor for a track read (``bench/baseline_app.py``), one route tried before the
  match, and through the kernel's full app (``/healthz``);
* JWT verification cold (signature) and warm (the verified-token cache);
* one Redis command (redis-py asyncio, hiredis), the rate limiter's ``EVALSHA``, and the
  kernel cache's ``get`` (command + JSON decode + metrics);
* a PostgreSQL transaction with one and with six statements through SQLAlchemy's
  ``AsyncSession``, one autocommit statement through ``kernel.db.autocommit()`` and through a
  ``psycopg_pool`` pool, the same transactions through plain psycopg, and an
  ``AsyncSession`` that runs no statement (the per-statement difference is what a hot path
  would save on raw SQL);
* an outbox relay pass on the Redis broker, per event, for passes of 1 and of 10 events.

It creates and drops a scratch database ``overhead_<random>`` and flushes Redis DB ``--redis-db``.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg
import psycopg_pool
import uvloop
from fastapi import FastAPI
from sqlalchemy import literal, select, text

from core.app import create_app
from core.kernel import Kernel
from core.ratelimit import hit
from core.settings import Settings
from core.testing.jwks import JwksServer


async def per_call(fn: Callable[[], Awaitable[Any]], rounds: int) -> float:
    """CPU milliseconds per call of ``fn``, after a warm-up of a tenth of the rounds."""
    for _ in range(max(20, rounds // 10)):
        await fn()
    started = time.process_time()
    for _ in range(rounds):
        await fn()
    return (time.process_time() - started) / rounds * 1000


async def run(args: argparse.Namespace) -> list[tuple[str, float]]:
    admin = args.admin_url
    name = f"overhead_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    database_url = admin.rsplit("/", 1)[0] + f"/{name}"
    redis_url = f"redis://127.0.0.1:6379/{args.redis_db}"
    jwks = JwksServer().start()
    rows: list[tuple[str, float]] = []
    try:
        settings = Settings(
            env="test",
            database_url=database_url,
            redis_url=redis_url,
            broker_url="stub://",
            auth_jwks_url=jwks.url,
            auth_issuer=jwks.issuer,
            auth_audience=jwks.audience,
            rate_limit="1000000/minute",
            log_level="WARNING",
        )
        kernel = Kernel(settings)
        await kernel.redis.flushdb()

        bare = FastAPI()

        @bare.get("/ping")
        async def ping() -> dict[str, str]:
            return {"ping": "pong"}

        app = create_app(kernel=kernel)
        async with (
            httpx.AsyncClient(transport=httpx.ASGITransport(bare), base_url="http://b") as b,
            httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://a") as a,
        ):
            client_only = await per_call(lambda: b.get("/ping"), args.rounds)
            rows.append(("bare FastAPI route (incl. the in-process HTTP client)", client_only))
            rows += await fastapi_rows(args.rounds)
            rows.append(
                (
                    "kernel app: GET /healthz (same client)",
                    await per_call(lambda: a.get("/healthz"), args.rounds),
                )
            )

        from skills.auth_jwt_verify.verify import verifier_for

        verifier = verifier_for(kernel)
        tokens = [jwks.mint(f"user-{i}") for i in range(args.rounds)]
        await verifier.verify(tokens[0])  # loads the JWKS once
        cold = iter(tokens)
        rows.append(
            (
                "JWT verify, cold (RS256 signature + claims)",
                # its warm-up plus its rounds stay within the fresh tokens
                await per_call(
                    lambda: verifier.verify(next(cold, tokens[0])), max(10, args.rounds * 4 // 5)
                ),
            )
        )
        rows.append(
            (
                "JWT verify, warm (verified-token cache)",
                await per_call(lambda: verifier.verify(tokens[0]), args.rounds),
            )
        )

        redis = kernel.redis
        await redis.set("sh:bench:k", b'{"a": 1}')
        rows.append(
            (
                "Redis GET (redis-py asyncio + hiredis)",
                await per_call(lambda: redis.get("sh:bench:k"), args.rounds),
            )
        )
        rows.append(
            (
                "rate limiter: one EVALSHA",
                await per_call(lambda: hit(kernel.cache, "bench", 10**9, 60), args.rounds),
            )
        )
        kernel.cache_keys.setdefault("bench", ("bench", _bench_key()))
        kernel._cache = None  # rebuild with the bench namespace declared
        await kernel.cache.set("bench", "k", {"id": str(uuid.uuid4()), "title": "x" * 200})
        rows.append(
            (
                "kernel cache get: GET + JSON + metrics",
                await per_call(lambda: kernel.cache.get("bench", "k"), args.rounds),
            )
        )

        db = kernel.db

        async def session_tx(statements: int = 1) -> None:
            async with db.session() as session, session.begin():
                for _ in range(statements):
                    await session.execute(text("SELECT 1"))

        async def session_idle() -> None:
            async with db.session():
                pass

        rows.append(
            ("AsyncSession: BEGIN; SELECT 1; COMMIT", await per_call(session_tx, args.rounds))
        )
        rows.append(
            (
                "AsyncSession: BEGIN; 6 × SELECT 1; COMMIT",
                await per_call(lambda: session_tx(6), args.rounds),
            )
        )
        rows.append(
            (
                "AsyncSession opened and closed, no statement",
                await per_call(session_idle, args.rounds),
            )
        )
        one = select(literal(1).label("x"))

        async def autocommit_statement() -> None:
            async with db.autocommit() as conn:
                (await conn.execute(one)).all()

        rows.append(
            (
                "kernel.db.autocommit(): one statement (checkout, execute, return)",
                await per_call(autocommit_statement, args.rounds),
            )
        )
        pool = psycopg_pool.AsyncConnectionPool(
            database_url, min_size=1, max_size=2, kwargs={"autocommit": True}, open=False
        )
        await pool.open()

        async def pooled_statement() -> None:
            async with pool.connection() as conn:
                await (await conn.execute("SELECT 1 AS x")).fetchall()

        rows.append(
            (
                "psycopg_pool: one statement (checkout, execute, return)",
                await per_call(pooled_statement, args.rounds),
            )
        )
        await pool.close()
        raw = await psycopg.AsyncConnection.connect(database_url)

        async def raw_tx(statements: int = 1) -> None:
            async with raw.transaction():
                for _ in range(statements):
                    await raw.execute("SELECT 1")

        rows.append(("plain psycopg: BEGIN; SELECT 1; COMMIT", await per_call(raw_tx, args.rounds)))
        rows.append(
            (
                "plain psycopg: BEGIN; 6 × SELECT 1; COMMIT",
                await per_call(lambda: raw_tx(6), args.rounds),
            )
        )
        await raw.close()
        rows += await relay_rows(kernel, redis_url, max(50, args.rounds // 20))
        await kernel.redis.flushdb()
        await kernel.aclose()
    finally:
        jwks.stop()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return rows


async def fastapi_rows(rounds: int) -> list[tuple[str, float]]:
    """What FastAPI itself costs, through the same in-process client: ``baseline_app``'s
    ``floor`` route (the shape of an authenticated track read, none of Soundhive's work), and
    one route tried before the match (a route behind 50 others, less the same route alone)."""
    import baseline_app  # beside this file (main() puts bench/ on the path)

    def app_with(routes_before: int) -> FastAPI:
        app = FastAPI()
        for n in range(routes_before):

            async def other() -> dict[str, str]:
                return {}

            app.add_api_route(f"/other{n}/{{item_id}}", other, methods=["GET"])

        @app.get("/tracks/{track_id}")
        async def track(track_id: uuid.UUID) -> dict[str, str]:
            return {"id": str(track_id)}

        return app

    path = f"/tracks/{uuid.uuid4()}"
    headers = {"Authorization": "Bearer floor"}
    targets = ((baseline_app.app, f"/floor{path}"), (app_with(0), path), (app_with(50), path))
    costs = []
    for app, target in targets:
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://f") as client:

            def get(client: httpx.AsyncClient = client, target: str = target) -> Any:
                return client.get(target, headers=headers)

            costs.append(await per_call(get, rounds))
    return [
        ("FastAPI floor of a track read (bench/baseline_app.py, same client)", costs[0]),
        ("FastAPI: one route tried before the match", (costs[2] - costs[1]) / 50),
    ]


async def relay_rows(kernel: Kernel, redis_url: str, rounds: int) -> list[tuple[str, float]]:
    """CPU per event of an outbox relay pass (``core.events.relay_pending``) on the Redis
    broker, for passes of 1 and of 10 ``track.liked`` events (two subscribers each): what
    the background relay's linger saves when a burst of writes shares one pass."""
    from core.broker import build_broker
    from core.events import OutboxEvent, emit, relay_pending

    async with kernel.db.engine.begin() as conn:
        await conn.run_sync(lambda sync: OutboxEvent.__table__.create(sync))  # type: ignore[attr-defined]
    broker = build_broker(redis_url)
    kernel.use_broker(broker)
    rows = []
    for batch in (1, 10):
        spent = 0.0
        for n in range(rounds + 10):
            async with kernel.db.session() as session, session.begin():
                for _ in range(batch):
                    ids = {k: str(uuid.uuid4()) for k in ("track_id", "user_id", "owner_id")}
                    emit(session, "track.liked", ids)
            started = time.process_time()
            relayed = await relay_pending(kernel)
            if n >= 10:  # warm-up passes are not counted
                spent += time.process_time() - started
            assert relayed == batch, relayed
        per_event = spent / (rounds * batch) * 1000
        rows.append((f"outbox relay, passes of {batch}: per event (2 messages)", per_event))
    broker.flush_all()
    return rows


def _bench_key() -> Any:
    from core.skill import CacheKey

    return CacheKey("bench", 60, "bench_overhead.py only")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--redis-db", type=int, default=15)
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # for baseline_app
    rows = uvloop.run(run(args))  # the event loop the API runs on (uvicorn picks uvloop)
    print(f"\n{args.rounds} rounds each; CPU ms per call of this process\n")
    print("| building block | CPU ms |\n|---|---:|")
    for label, value in rows:
        print(f"| {label} | {value:.3f} |")


if __name__ == "__main__":
    main()
