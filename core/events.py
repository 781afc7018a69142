"""Domain events through a transactional outbox.

A service calls :func:`emit` inside its transaction; the row commits (or rolls back) with the
change. The relay moves committed rows to the broker, one message per subscribing actor, so a
broker outage delays events but never loses them. Delivery is at-least-once.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

import dramatiq
from sqlalchemy import (
    ARRAY,
    Column,
    DateTime,
    Index,
    Insert,
    Integer,
    any_,
    bindparam,
    delete,
    func,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ColumnElement, FromClause, Select, Update
from sqlmodel import Field, SQLModel

from core import metrics
from core.broker import enqueue_all

if TYPE_CHECKING:
    from core.kernel import Kernel

log = logging.getLogger("soundhive.events")


def utcnow() -> datetime:
    return datetime.now(UTC)


class OutboxEvent(SQLModel, table=True):
    """A domain event waiting to be (or already) relayed to subscribers."""

    __tablename__ = "core_outbox"
    __table_args__ = (
        Index(
            "ix_core_outbox_pending",
            "occurred_at",
            postgresql_where=text("relayed_at IS NULL"),
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    type: str = Field(max_length=100)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))
    occurred_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    relayed_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )


_emitted: ContextVar[bool] = ContextVar("soundhive_events_emitted", default=False)


def emit(session: AsyncSession, event_type: str, payload: dict[str, Any]) -> OutboxEvent:
    """Record a domain event in the caller's transaction; relayed after commit."""
    row = OutboxEvent(type=event_type, payload=payload)
    session.add(row)
    session.info["outbox_dirty"] = True
    _emitted.set(True)
    return row


def outbox_insert(
    event_type: str, payload: dict[str, ColumnElement[Any] | Any], source: FromClause
) -> Insert:
    """:func:`emit` as part of a single-statement write: an ``INSERT`` of one event per row
    of ``source`` (a CTE of the same statement), its payload built in SQL from ``payload``'s
    expressions. Embed it with ``add_cte`` and call :func:`events_committed` once the
    statement has run. Why: a write that is one statement in autocommit needs no ``BEGIN``,
    ``COMMIT`` or ORM flush, which cost a hot write more than its SQL (docs/PERFORMANCE.md)."""
    pairs = [part for key, value in payload.items() for part in (literal(key), value)]
    table = OutboxEvent.__table__  # type: ignore[attr-defined]
    rows = select(
        func.gen_random_uuid(), literal(event_type), func.jsonb_build_object(*pairs), func.now()
    ).select_from(source)
    return table.insert().from_select(["id", "type", "payload", "occurred_at"], rows)


async def relaying(kernel: Kernel, work: Any) -> Any:
    """Await ``work`` and relay right away any events it emitted (used around actors, so a
    job's events do not wait for the scheduler's relay loop)."""
    token = _emitted.set(False)
    try:
        result = await work
        if _emitted.get():
            try:
                await relay_pending(kernel)
            except Exception as exc:  # the scheduler's relay loop retries
                log.warning("outbox relay deferred: %s", type(exc).__name__)
        return result
    finally:
        _emitted.reset(token)


def event_message(kernel: Kernel, actor_name: str, row: Any) -> dramatiq.Message[Any]:
    """The message for one subscriber of an outbox row (an ``OutboxEvent`` or a row of it)."""
    actor = kernel.broker.get_actor(actor_name)
    return dramatiq.Message(
        queue_name=actor.queue_name,
        actor_name=actor_name,
        args=(),
        kwargs={
            "id": str(row.id),
            "type": row.type,
            "payload": row.payload,
            "occurred_at": row.occurred_at.isoformat(),
        },
        options={},
    )


@cache
def _relay_statements() -> tuple[Select[Any], Update]:
    """The relay's two statements, built once: the next batch of pending rows (locked, others'
    locked rows skipped) and the mark of the rows sent."""
    outbox = OutboxEvent.__table__  # type: ignore[attr-defined]
    pending = (
        select(outbox.c.id, outbox.c.type, outbox.c.payload, outbox.c.occurred_at)
        .where(outbox.c.relayed_at.is_(None))
        .order_by(outbox.c.occurred_at)
        .limit(bindparam("batch", type_=Integer))
        .with_for_update(skip_locked=True)
    )
    mark = (
        update(outbox)
        .where(outbox.c.id == any_(bindparam("ids", type_=ARRAY(outbox.c.id.type))))
        .values(relayed_at=func.now())
    )
    return pending, mark


async def relay_pending(kernel: Kernel, *, batch: int = 200) -> int:
    """Send committed, unrelayed events to their subscribers; returns how many were relayed.

    Rows are locked with SKIP LOCKED so several relays (API processes, scheduler) never send
    the same batch twice at once. If the broker fails, the transaction rolls back and the
    rows wait for the next attempt. One pass is four statements on a bare connection (no ORM
    unit of work) and one pipelined enqueue, whatever the batch's size.
    """
    pending, mark = _relay_statements()
    async with kernel.db.engine.begin() as conn:
        rows = (await conn.execute(pending, {"batch": batch})).all()
        if not rows:
            return 0
        messages = [
            event_message(kernel, actor_name, row)
            for row in rows
            for actor_name in kernel.subscriptions.get(row.type, ())
        ]
        if messages:
            await asyncio.to_thread(enqueue_all, kernel.broker, messages)
        await conn.execute(mark, {"ids": [row.id for row in rows]})
    metrics.OUTBOX_RELAYED.inc(len(rows))
    return len(rows)


async def pending_count(kernel: Kernel) -> int:
    async with kernel.db.session() as session:
        count = await session.scalar(
            select(func.count())  # type: ignore[arg-type]
            .select_from(OutboxEvent)
            .where(
                OutboxEvent.relayed_at.is_(None)  # type: ignore[union-attr]
            )
        )
    metrics.OUTBOX_PENDING.set(count or 0)
    return int(count or 0)


async def prune_relayed(kernel: Kernel, *, older_than: timedelta = timedelta(days=7)) -> int:
    """Delete relayed events past the retention window."""
    async with kernel.db.session() as session, session.begin():
        result = await session.execute(
            delete(OutboxEvent).where(
                OutboxEvent.relayed_at < utcnow() - older_than  # type: ignore[operator,arg-type]
            )
        )
    return int(getattr(result, "rowcount", 0) or 0)


async def relay_after_commit(kernel: Kernel, session: AsyncSession) -> None:
    """After a request that emitted events: wake this process's background relay, or relay
    right here where none runs (CLI, scripts). Failures are left to the scheduler's loop."""
    if session.info.pop("outbox_dirty", False):
        await events_committed(kernel)


async def events_committed(kernel: Kernel) -> None:
    """Events were committed outside a session (an :func:`outbox_insert`): relay them as
    :func:`relay_after_commit` would."""
    relay: BackgroundRelay | None = getattr(kernel, "relay", None)
    if relay is not None and relay.running:
        relay.wake()
        return
    try:
        await relay_pending(kernel)
    except Exception as exc:  # the scheduler's relay loop retries; nothing is lost
        log.warning("outbox relay deferred: %s: %s", type(exc).__name__, exc)


class BackgroundRelay:
    """Relays committed events off the request path, a few milliseconds after the commit.

    Relaying inline cost every write request a second transaction and a broker round trip
    (docs/PERFORMANCE.md). Here a woken task relays whatever is pending in batches, so a
    burst of writes shares one ``SELECT … FOR UPDATE SKIP LOCKED`` and one enqueue pass.
    A failure is logged and left to the scheduler's relay loop; rows wait in the outbox.
    """

    def __init__(self, kernel: Kernel, *, batch: int = 200, linger: float | None = None) -> None:
        self.kernel, self.batch = kernel, batch
        self.linger = kernel.settings.outbox_linger_ms / 1000 if linger is None else linger
        """Seconds a wake-up waits before relaying, so a burst of commits shares one pass."""
        self._wanted = asyncio.Event()
        self._busy = False  # a relay pass was under way (it may have been cancelled mid-way)
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def wake(self) -> None:
        self._wanted.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="soundhive-outbox-relay")

    async def stop(self) -> None:
        """Stop, then relay what the last requests committed (bounded: shutdown must end)."""
        if self._task is None:
            return
        # a flag as well as the cancel: a driver may turn a cancel that lands in its I/O into
        # an ordinary error, which the loop below would log and carry on from
        self._stopping = True
        self._task.cancel()
        await asyncio.wait({self._task}, timeout=5)
        self._task = None
        if self._wanted.is_set() or self._busy:
            try:
                await asyncio.wait_for(relay_pending(self.kernel, batch=self.batch), 5)
            except Exception as exc:
                log.warning("outbox relay at shutdown deferred: %s", type(exc).__name__)

    async def _run(self) -> None:
        while not self._stopping:
            await self._wanted.wait()
            self._busy = True
            if self.linger:
                await asyncio.sleep(self.linger)
            self._wanted.clear()
            try:
                while await relay_pending(self.kernel, batch=self.batch) >= self.batch:
                    pass  # a full batch: more may be waiting
            except Exception as exc:  # never let the task die: the scheduler relays it later
                log.warning("outbox relay deferred: %s: %s", type(exc).__name__, exc)
                self._busy = False
                await asyncio.sleep(1)
            self._busy = False
