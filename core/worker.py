"""``soundhive worker``: Dramatiq worker processes built from the kernel, not from imports."""

from __future__ import annotations

import logging
import multiprocessing
import signal
import threading

import dramatiq

log = logging.getLogger("soundhive.worker")


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
    if processes <= 1:
        run_worker(threads)
        return
    ctx = multiprocessing.get_context("spawn")
    children = [ctx.Process(target=run_worker, args=(threads,)) for _ in range(processes)]
    for child in children:
        child.start()

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            if child.pid:
                try:
                    import os

                    os.kill(child.pid, signum)
                except ProcessLookupError:
                    pass

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    for child in children:
        child.join()
