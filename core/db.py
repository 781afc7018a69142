"""Async database access: one pooled engine per process, sessions per request or job.

Services own their transactions (``async with session.begin()``); repositories only run SQL.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from core import metrics

log = logging.getLogger("soundhive.db")


def async_url(url: str) -> str:
    """Normalise ``postgres://`` / ``postgresql://`` URLs to the psycopg 3 async driver."""
    for prefix in ("postgresql+psycopg://", "postgresql+asyncpg://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class Database:
    """Owns the engine and session factory; created lazily so import does no work."""

    def __init__(
        self, url: str, *, pool_size: int = 20, max_overflow: int = 10, pre_ping: bool = False
    ) -> None:
        """``pre_ping`` off by default: a ping is a round trip on every checkout. A connection
        that died (a database restart) fails its next statement instead; that request gets a
        503 and SQLAlchemy discards the whole stale pool, so the API recovers on its own
        (tests/test_faults.py). Overflow connections are closed when returned, so the pool is
        sized for the usual concurrency and overflow is for bursts only."""
        self.url = async_url(url)
        self.engine: AsyncEngine = create_async_engine(
            self.url,
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_pre_ping=pre_ping,
            pool_timeout=5,
            pool_recycle=1800,
            connect_args={"connect_timeout": 5},
        )
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        _time_queries(self.engine)

    def session(self) -> AsyncSession:
        return self.sessionmaker()

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncConnection]:
        """A pooled connection in autocommit, for a read that is a single statement.

        One statement is atomic on its own, so a transaction would only add a ``BEGIN`` and a
        ``ROLLBACK`` round trip, and a bare connection skips the ORM session's bookkeeping
        (its begin, commit and close cost more CPU than the query's own round trip). The pool
        restores the isolation level when the connection goes back."""
        async with self.engine.connect() as conn:
            yield await conn.execution_options(isolation_level="AUTOCOMMIT")

    async def dispose(self) -> None:
        await self.engine.dispose()


def _time_queries(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "before_cursor_execute")
    def _start(
        conn: Any, cursor: Any, statement: Any, params: Any, context: Any, many: Any
    ) -> None:
        conn.info.setdefault("query_start", []).append(time.perf_counter())

    @event.listens_for(sync_engine, "after_cursor_execute")
    def _end(conn: Any, cursor: Any, statement: Any, params: Any, context: Any, many: Any) -> None:
        started = conn.info["query_start"].pop()
        verb = statement.lstrip().split(" ", 1)[0].upper()[:10]
        metrics.DB_QUERY_SECONDS.labels(verb).observe(time.perf_counter() - started)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session for one request; closed (and rolled back if left open) afterwards.

    Domain events the request committed are relayed to the broker right after; if that fails
    they wait in the outbox for the scheduler's relay loop.
    """
    from core.errors import _is_unavailable
    from core.events import relay_after_commit

    kernel = request.app.state.kernel
    async with kernel.db.session() as session:
        yield session
        if session.in_transaction():
            session.info.pop("outbox_dirty", None)  # uncommitted events never happened
            try:
                await session.rollback()
            except Exception as exc:
                # The database went away after the handler's last query (a restart ends every
                # session). The response is already on its way: raising here would cut it off.
                # The transaction died with the connection, which the pool discards.
                if not _is_unavailable(exc):
                    raise
                log.warning("rollback after the response failed: %s", type(exc).__name__)
    await relay_after_commit(kernel, session)


SessionDep = Annotated[AsyncSession, Depends(get_session)]
