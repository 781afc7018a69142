"""``soundhive scheduler``: sends periodic jobs on time and relays the outbox continuously."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time

from core import events
from core.kernel import Kernel

log = logging.getLogger("soundhive.scheduler")


async def claim_tick(kernel: Kernel, job_name: str, slot: int, ttl: int) -> bool:
    """Only one scheduler sends a given tick; without Redis every scheduler sends it."""
    cache = kernel.cache
    if not cache.usable or cache.client is None:
        return True
    try:
        return bool(
            await cache.client.set(
                cache.key("scheduler", f"{job_name}:{slot}"), b"1", nx=True, ex=ttl
            )
        )
    except Exception as exc:
        cache.failed(exc)
        return True


async def run_scheduler(
    kernel: Kernel, *, relay_interval: float = 0.5, stop: asyncio.Event | None = None
) -> None:
    stop = stop or asyncio.Event()
    next_run = {f"{skill}.{job.verb}": time.time() for skill, job in kernel.periodic_jobs}
    intervals = {f"{skill}.{job.verb}": job.every_seconds for skill, job in kernel.periodic_jobs}
    last_prune = 0.0
    log.info("scheduler started with %d periodic jobs", len(next_run))
    while not stop.is_set():
        now = time.time()
        for name, due in next_run.items():
            if now < due:
                continue
            every = intervals[name]
            slot = int(now // every)
            next_run[name] = (slot + 1) * every
            try:
                if await claim_tick(kernel, name, slot, int(every) + 5):
                    await asyncio.to_thread(kernel.send, name)
            except Exception as exc:
                log.warning("could not send %s: %s", name, exc)
                next_run[name] = now + min(every, 5)
        try:
            while await events.relay_pending(kernel) > 0:
                pass
            if now - last_prune > 3600:
                await events.prune_relayed(kernel)
                last_prune = now
        except Exception as exc:
            log.warning("outbox relay waiting for its dependencies: %s", type(exc).__name__)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=relay_interval)


def main(kernel: Kernel) -> None:
    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with kernel.running():
            await run_scheduler(kernel, stop=stop)

    asyncio.run(runner())
