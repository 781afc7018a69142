"""Every hookspec is exercised by the ``everything`` test skill, through the real kernel."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from dramatiq.brokers.stub import StubBroker
from typer.testing import CliRunner

from core import events, hookspecs
from core.app import create_app
from core.kernel import Kernel
from core.plugins import SkillError, call_each, load_skills
from core.scheduler import run_scheduler
from core.testing.live import LiveServer
from tests.everything_skill import Everything


def hook_names() -> set[str]:
    return {name for name, f in vars(hookspecs).items() if hasattr(f, "soundhive_spec")}


def test_everything_skill_implements_every_hook() -> None:
    implemented = {
        name for name in dir(Everything) if hasattr(getattr(Everything, name), "soundhive_impl")
    }
    assert implemented == hook_names()


@pytest.fixture
def everything(make_settings: Any, migrated_database: str) -> tuple[Everything, Kernel]:
    skill = Everything()
    kernel = Kernel(make_settings(skills_enabled=["everything"]), extra_plugins=[skill])
    return skill, kernel


def test_http_hooks_routes_lifespan_auth_health_settings(
    everything: tuple[Everything, Kernel],
) -> None:
    skill, kernel = everything
    with (
        LiveServer(create_app(kernel=kernel)) as server,
        httpx.Client(base_url=server.url, timeout=30) as http,
    ):
        assert skill.lifespan_log == ["start"]
        r = http.get("/api/v1/everything/whoami", headers={"X-Everything-User": "ann"})
        assert r.json() == {"sub": "ann", "greeting": "hi"}
        assert http.get("/api/v1/everything/whoami").json()["sub"] is None
        assert http.get("/.well-known/everything").json() == {"everything": True}
        spec = http.get("/openapi.json").json()
        assert spec["paths"]["/api/v1/everything/whoami"]["get"]["tags"] == ["everything"]
        ready = http.get("/readyz")
        assert ready.status_code == 200 and ready.json()["checks"]["everything:probe"]["ok"]
        skill.healthy = False
        ready = http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["everything:probe"] == {
            "ok": False,
            "critical": True,
            "error": "RuntimeError",
        }
    assert skill.lifespan_log == ["start", "stop"]
    info = kernel.skills["everything"]
    assert info.tables == ["everything_things"]
    assert [k.namespace for k in info.cache_keys] == ["everything"]
    assert "GET /api/v1/everything/whoami" in info.routes


def test_skill_settings_come_from_the_environment(
    everything: tuple[Everything, Kernel], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOUNDHIVE_EVERYTHING_GREETING", "salut")
    _, kernel = everything
    assert kernel.skill_settings("everything").greeting == "salut"
    from tests.test_kernel_plugins import plugin

    bare = Kernel(
        kernel.settings.model_copy(update={"skills_enabled": ["bare"]}),
        extra_plugins=[plugin("bare")],
    )
    with pytest.raises(SkillError, match="'bare' declares no settings"):
        bare.skill_settings("bare")


def test_check_settings_and_dev_banner(make_settings: Any) -> None:
    skill = Everything()
    with pytest.raises(
        SkillError, match="'everything' refuses to start: everything refuses staging"
    ):
        Kernel(make_settings(env="staging", skills_enabled=["everything"]), extra_plugins=[skill])
    pm, _ = load_skills(make_settings(skills_enabled=["everything"]), extra=[skill])
    assert call_each(pm, "dev_banner", settings=make_settings()) == [
        ("everything", ["everything runs in test"])
    ]


def test_cli_hook_adds_a_command(make_settings: Any) -> None:
    import typer

    pm, _ = load_skills(make_settings(skills_enabled=["everything"]), extra=[Everything()])
    app = typer.Typer()

    @app.command()
    def noop() -> None:
        """Keep typer in multi-command mode."""

    call_each(pm, "register_cli", app=app)
    result = CliRunner().invoke(app, ["everything-hello"])
    assert result.exit_code == 0 and result.output.strip() == "hello from everything"


async def run_queue_dry(broker: Any) -> None:
    """Run a real Dramatiq worker on ``broker`` until the default queue is empty."""
    import dramatiq

    worker = dramatiq.Worker(broker, worker_timeout=50)
    worker.start()
    try:
        await asyncio.to_thread(broker.join, "default", timeout=10_000)
        await asyncio.to_thread(worker.join)
    finally:
        worker.stop()


def stub_kernel(kernel: Kernel) -> StubBroker:
    from dramatiq.middleware.asyncio import AsyncIO

    broker = StubBroker()
    broker.add_middleware(AsyncIO())
    kernel.use_broker(broker)
    return broker


async def test_events_are_relayed_to_subscribers_after_commit(
    everything: tuple[Everything, Kernel],
) -> None:
    skill, kernel = everything
    broker = stub_kernel(kernel)
    async with kernel.db.session() as session, session.begin():
        events.emit(session, "everything.happened", {"n": 1})
        events.emit(session, "nobody.listens", {"n": 2})
    async with kernel.db.session() as session:
        try:
            async with session.begin():
                events.emit(session, "everything.happened", {"n": "rolled back"})
                raise RuntimeError("abort")
        except RuntimeError:
            pass
    assert await events.pending_count(kernel) == 2
    assert await events.relay_pending(kernel) == 2
    assert await events.pending_count(kernel) == 0
    queued = broker.queues["default"].qsize()
    assert queued == 1  # one subscriber for one committed event; the rollback left nothing
    await run_queue_dry(broker)
    assert [r["payload"] for r in skill.received] == [{"n": 1}]
    assert skill.received[0]["type"] == "everything.happened"
    await kernel.aclose()


async def test_events_written_by_a_single_statement_commit_with_it(
    everything: tuple[Everything, Kernel],
) -> None:
    """``outbox_insert`` embeds the event in the write's own statement: one event per row of
    the source, its payload built in SQL; none when the source is empty; a statement that
    fails leaves none. ``events_committed`` then relays them like ``relay_after_commit``."""
    import dramatiq
    from sqlalchemy import Integer, column, literal, select, values

    _, kernel = everything
    broker = stub_kernel(kernel)

    def statement(numbers: list[int], divisor: int = 1) -> Any:
        rows = values(column("n", Integer), name="rows").data([(n,) for n in numbers] or [(0,)])
        source = select(rows.c.n).where(rows.c.n != 0).cte("source")  # [] leaves it empty
        payload = {"n": source.c.n / literal(divisor), "tag": literal("single")}
        event = events.outbox_insert("everything.happened", payload, source)
        return select(literal(1)).add_cte(event.cte("event"))

    async with kernel.db.autocommit() as conn:
        await conn.execute(statement([10, 20]))
        await conn.execute(statement([]))
        with pytest.raises(Exception):  # noqa: B017 - division by zero aborts the statement
            await conn.execute(statement([30], divisor=0))
    assert await events.pending_count(kernel) == 2
    await events.events_committed(kernel)  # no background relay here: relays inline
    assert await events.pending_count(kernel) == 0
    queue = broker.queues["default"]
    messages = [dramatiq.Message.decode(queue.get_nowait()) for _ in range(queue.qsize())]
    payloads = sorted((m.kwargs["payload"] for m in messages), key=lambda p: p["n"])
    assert payloads == [{"n": 10, "tag": "single"}, {"n": 20, "tag": "single"}]
    assert {m.kwargs["type"] for m in messages} == {"everything.happened"}
    await kernel.aclose()


async def test_broker_outage_keeps_events_until_it_returns(
    everything: tuple[Everything, Kernel],
) -> None:
    _, kernel = everything
    from core.broker import build_broker

    kernel.use_broker(build_broker("redis://127.0.0.1:1/0"))  # nothing listens there
    async with kernel.db.session() as session, session.begin():
        events.emit(session, "everything.happened", {"n": 3})
    with pytest.raises(Exception):  # noqa: B017 - any connection error
        await events.relay_pending(kernel)
    assert await events.pending_count(kernel) == 1
    broker = stub_kernel(kernel)
    assert await events.relay_pending(kernel) == 1
    assert broker.queues["default"].qsize() == 1
    await kernel.aclose()


async def test_background_relay_batches_after_commit_and_flushes_at_stop(
    everything: tuple[Everything, Kernel],
) -> None:
    """A request's commit only wakes the process's relay (no relay inside the request); the
    relay sends what is pending, and ``stop`` sends what the last commits left."""
    _, kernel = everything
    broker = stub_kernel(kernel)
    relay = kernel.relay = events.BackgroundRelay(kernel)
    relay.start()
    async with kernel.db.session() as session:
        async with session.begin():
            events.emit(session, "everything.happened", {"n": 5})
            events.emit(session, "everything.happened", {"n": 6})
        await events.relay_after_commit(kernel, session)  # returns at once: wakes the relay
    for _ in range(100):
        if broker.queues["default"].qsize() == 2:
            break
        await asyncio.sleep(0.02)
    assert broker.queues["default"].qsize() == 2 and await events.pending_count(kernel) == 0

    relay._task.cancel()  # type: ignore[union-attr]  # the loop is gone, an event is not
    async with kernel.db.session() as session:
        async with session.begin():
            events.emit(session, "everything.happened", {"n": 7})
        relay.wake()
    await relay.stop()
    assert broker.queues["default"].qsize() == 3 and await events.pending_count(kernel) == 0
    assert not relay.running
    kernel.relay = None
    await kernel.aclose()


async def test_scheduler_sends_periodic_jobs_and_relays(
    everything: tuple[Everything, Kernel],
) -> None:
    _, kernel = everything
    broker = stub_kernel(kernel)
    async with kernel.db.session() as session, session.begin():
        events.emit(session, "everything.happened", {"n": 4})
    stop = asyncio.Event()
    task = asyncio.create_task(run_scheduler(kernel, relay_interval=0.05, stop=stop))
    await asyncio.sleep(0.7)
    stop.set()
    await task
    import dramatiq

    messages = [dramatiq.Message.decode(raw) for raw in broker.queues["default"].queue]
    assert {m.actor_name for m in messages} == {"everything.record"}
    relayed = [m for m in messages if m.kwargs.get("type") == "everything.happened"]
    ticks = [m for m in messages if not m.kwargs]
    assert len(relayed) == 1 and relayed[0].kwargs["payload"] == {"n": 4}
    assert 2 <= len(ticks) <= 6  # every 0.2 s during ~0.7 s
    assert await events.pending_count(kernel) == 0
    await kernel.aclose()


async def test_relay_enqueues_a_batch_in_one_pipeline_and_a_real_worker_runs_each_once(
    everything: tuple[Everything, Kernel], soundhive_services: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the Redis broker the relay sends a batch through one pipeline (``enqueue_all``):
    every message lands in the queue as Dramatiq's own ``enqueue`` would put it, a real
    worker runs each exactly once, and enqueues from other threads meanwhile go straight to
    Redis. A burst of commits that each wake the background relay goes out in one pass."""
    import dramatiq

    from core.broker import PipelinedScript, build_broker

    skill, kernel = everything
    broker = build_broker(soundhive_services.redis_url)
    assert isinstance(broker.scripts["dispatch"], PipelinedScript)  # type: ignore[attr-defined]
    kernel.use_broker(broker)
    broker.flush_all()
    passes: list[int] = []
    relay_pending = events.relay_pending

    async def counted(kernel: Kernel, *, batch: int = 200) -> int:
        relayed = await relay_pending(kernel, batch=batch)
        passes.append(relayed)
        return relayed

    relay = kernel.relay = events.BackgroundRelay(kernel, linger=0.2)
    monkeypatch.setattr(events, "relay_pending", counted)  # counts the passes, runs each
    relay.start()
    try:
        for n in range(6):  # six requests, six commits, six wake-ups within the linger
            async with kernel.db.session() as session:
                async with session.begin():
                    events.emit(session, "everything.happened", {"n": n})
                await events.relay_after_commit(kernel, session)
        for _ in range(100):
            if await events.pending_count(kernel) == 0:
                break
            await asyncio.sleep(0.05)
    finally:
        await relay.stop()
        kernel.relay = None
    assert [p for p in passes if p] == [6]  # one pass carried the whole burst
    client = broker.client  # type: ignore[attr-defined]
    queued = [
        dramatiq.Message.decode(raw)
        for raw in client.hvals("soundhive-tasks:default.msgs")  # Dramatiq's message store
    ]
    assert sorted(m.kwargs["payload"]["n"] for m in queued) == list(range(6))
    assert len({m.options["redis_message_id"] for m in queued}) == 6

    await run_queue_dry(broker)
    assert sorted(r["payload"]["n"] for r in skill.received) == list(range(6))
    broker.flush_all()
    await kernel.aclose()
