"""``soundhive worker``: Dramatiq worker processes built from the kernel, not from imports."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading

import dramatiq
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger("soundhive.worker")


class WorkerMetricsSettings(BaseSettings):
    """Where ``soundhive worker`` serves its own ``/metrics`` (workers have no HTTP API)."""

    model_config = SettingsConfigDict(
        env_prefix="SOUNDHIVE_", env_file=".env", extra="ignore", env_ignore_empty=True
    )

    worker_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    """Off unless set; e.g. 9191 (compose) — scrape ``http://worker:9191/metrics``."""
    worker_metrics_host: str = "127.0.0.1"
    """Interface to bind; ``0.0.0.0`` in a container so Prometheus can reach it."""


def start_metrics_server(registry: object = None) -> object | None:
    """Serve ``/metrics`` on ``SOUNDHIVE_WORKER_METRICS_PORT`` in a daemon thread, if set."""
    from prometheus_client import REGISTRY, start_http_server

    settings = WorkerMetricsSettings()
    if settings.worker_metrics_port is None:
        return None
    server, _thread = start_http_server(
        settings.worker_metrics_port,
        addr=settings.worker_metrics_host,
        registry=registry or REGISTRY,  # type: ignore[arg-type]
    )
    log.info(
        "worker metrics on http://%s:%d/metrics",
        settings.worker_metrics_host,
        settings.worker_metrics_port,
    )
    return server


def run_worker(threads: int) -> None:
    """One worker process: build the kernel, consume until SIGTERM/SIGINT."""
    from core.kernel import Kernel
    from core.logging import configure_logging
    from core.settings import Settings

    settings = Settings()
    configure_logging(settings.log_level, json=settings.log_json)
    kernel = Kernel(settings)
    broker = kernel.broker
    worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=200)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    worker.start()
    log.info("worker started: %d actors, %d threads", len(kernel.actors), threads)
    stop.wait()
    worker.stop(timeout=10_000)
    broker.close()


def run_workers(processes: int, threads: int) -> None:
    """Run ``processes`` worker processes; with several, this one supervises them and serves
    their summed metrics (``PROMETHEUS_MULTIPROC_DIR``, see core/metrics.py)."""
    from core.metrics import multiprocess_registry, prepare_multiprocess

    path = prepare_multiprocess(processes)
    if processes <= 1:
        start_metrics_server()
        run_worker(threads)
        return
    assert path is not None
    start_metrics_server(multiprocess_registry(path))
    ctx = multiprocessing.get_context("spawn")
    children = [ctx.Process(target=run_worker, args=(threads,)) for _ in range(processes)]
    for child in children:
        child.start()
    stopping = threading.Event()

    def forward(signum: int, _frame: object) -> None:
        stopping.set()
        for child in children:
            if child.pid and child.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    # supervise: a child killed by the OOM killer or a SIGKILL is replaced, so capacity
    # never drops silently; its unacknowledged messages are redelivered by the broker
    while not stopping.is_set():
        for index, child in enumerate(children):
            if not child.is_alive() and not stopping.is_set():
                log.warning(
                    "worker process %s exited (%s); starting a new one", child.pid, child.exitcode
                )
                children[index] = ctx.Process(target=run_worker, args=(threads,))
                children[index].start()
        stopping.wait(1.0)
    for child in children:
        child.join(timeout=30)
