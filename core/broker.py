"""The Dramatiq broker, built by the kernel (never at import time), and job metrics."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Middleware
from dramatiq.middleware.asyncio import AsyncIO

from core import metrics


class JobMetrics(Middleware):
    """Counts job outcomes per actor (success, failure, retry) and times every run."""

    def __init__(self) -> None:
        self._started: dict[str, float] = {}

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        self._started[message.message_id] = time.perf_counter()

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if exception is None:
            outcome = "success"
        else:
            retries = message.options.get("retries", 0)
            max_retries = message.options.get("max_retries")
            if max_retries is None:
                actor = broker.actors.get(message.actor_name)
                max_retries = actor.options.get("max_retries", 20) if actor else 0
            outcome = "failure" if retries >= max_retries else "retry"
        metrics.JOBS.labels(message.actor_name, outcome).inc()
        started = self._started.pop(message.message_id, None)
        if started is not None:
            metrics.JOB_SECONDS.labels(message.actor_name).observe(time.perf_counter() - started)

    def after_skip_message(self, broker: dramatiq.Broker, message: Any) -> None:
        self._started.pop(message.message_id, None)


def build_broker(url: str | None) -> dramatiq.Broker:
    """A Redis or RabbitMQ broker from the URL; ``stub://`` (or no URL) gives an in-memory one."""
    broker: dramatiq.Broker
    if not url or url.startswith("stub://"):
        broker = StubBroker()
    elif url.startswith(("amqp://", "amqps://")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        broker = RabbitmqBroker(url=url, confirm_delivery=True)
    elif url.startswith(("redis://", "rediss://", "unix://")):
        from dramatiq.brokers.redis import RedisBroker

        broker = RedisBroker(url=url, namespace="soundhive-tasks")
        broker.scripts["dispatch"] = PipelinedScript(broker.scripts["dispatch"])
    else:
        raise ValueError(f"unsupported broker URL scheme in {url.split('://', 1)[0]!r}")
    broker.add_middleware(AsyncIO())
    broker.add_middleware(JobMetrics())
    return broker


class PipelinedScript:
    """Dramatiq's Redis ``dispatch`` script, sent through this thread's pipeline while
    :func:`enqueue_all` fills one, else straight to Redis as before.

    Why: the outbox relay sends one message per subscriber of each event; one ``EVALSHA``
    round trip each was the largest cost left on a write (docs/PERFORMANCE.md). Dramatiq's
    ``RedisBroker.enqueue`` stays the one that builds and sends every message; only the
    script call is redirected, per thread, so other threads' enqueues are unaffected."""

    def __init__(self, script: Any) -> None:
        self.script = script
        self.local = threading.local()

    def __call__(self, keys: Any = None, args: Any = None, client: Any = None) -> Any:
        pipe = getattr(self.local, "pipe", None)
        return self.script(keys=keys, args=args, client=client if pipe is None else pipe)


def enqueue_all(broker: dramatiq.Broker, messages: Sequence[dramatiq.Message[Any]]) -> None:
    """Enqueue ``messages``: in one pipelined round trip on a Redis broker, one by one
    elsewhere. Either way an error raises, so the caller (the outbox relay) keeps its rows
    and sends them again: delivery is at-least-once."""
    dispatch = getattr(broker, "scripts", {}).get("dispatch")
    if not isinstance(dispatch, PipelinedScript) or len(messages) < 2:
        for message in messages:
            broker.enqueue(message)
        return
    pipe = broker.client.pipeline(transaction=False)  # type: ignore[attr-defined]
    dispatch.local.pipe = pipe
    try:
        for message in messages:
            broker.enqueue(message)
    finally:
        dispatch.local.pipe = None
    pipe.execute()
