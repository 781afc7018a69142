"""Prometheus metrics with stable names; documented in docs/operations.md.

Several processes (``soundhive serve --workers N``, ``soundhive worker --processes N``) each
count on their own, so a scrape of one of them would see a fraction. When
``PROMETHEUS_MULTIPROC_DIR`` is set (``prepare_multiprocess`` does it before forking), every
process writes its samples to files there and ``/metrics`` reports the sum over all processes,
plus ``process_*`` CPU/memory of each live one, labelled by ``pid``.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> str | None:
    """The shared sample directory, when this process runs in multiprocess mode."""
    return os.environ.get(MULTIPROC_ENV) or os.environ.get(MULTIPROC_ENV.lower()) or None


# Decided once, at import (prometheus_client picks its value class at import time too).
_MULTIPROC = multiprocess_dir()
# In multiprocess mode the metrics are read back from the files by MultiProcessCollector;
# registering them as well would report this process's share twice.
_REG: Any = None if _MULTIPROC else REGISTRY

HTTP_REQUESTS = Counter(
    "soundhive_http_requests_total",
    "HTTP requests by route template",
    ["method", "route", "status"],
    registry=_REG,
)
HTTP_LATENCY = Histogram(
    "soundhive_http_request_duration_seconds",
    "HTTP request latency by route template",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5, 10),
    registry=_REG,
)
HTTP_ERRORS = Counter(
    "soundhive_http_errors_total",
    "HTTP responses with status >= 500 by route",
    ["method", "route"],
    registry=_REG,
)
HTTP_IN_FLIGHT = Gauge(
    "soundhive_http_requests_in_flight",
    "Requests being served now",
    registry=_REG,
    multiprocess_mode="livesum",
)
DB_QUERY_SECONDS = Histogram(
    "soundhive_db_query_duration_seconds",
    "Database statement time by verb",
    ["verb"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5),
    registry=_REG,
)
CACHE_REQUESTS = Counter(
    "soundhive_cache_requests_total",
    "Cache look-ups by namespace and result",
    ["namespace", "result"],
    registry=_REG,
)
CACHE_ERRORS = Counter(
    "soundhive_cache_errors_total", "Redis failures seen by the cache", registry=_REG
)
RATE_LIMITED = Counter(
    "soundhive_rate_limited_total", "Requests refused by the rate limiter", registry=_REG
)
JOBS = Counter(
    "soundhive_jobs_total", "Background job outcomes", ["actor", "outcome"], registry=_REG
)
JOB_SECONDS = Histogram(
    "soundhive_job_duration_seconds",
    "Background job run time by actor (every outcome)",
    ["actor"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
    registry=_REG,
)
OUTBOX_RELAYED = Counter(
    "soundhive_outbox_relayed_total", "Domain events relayed to the broker", registry=_REG
)
OUTBOX_PENDING = Gauge(
    "soundhive_outbox_pending",
    "Domain events waiting for the broker",
    registry=_REG,
    multiprocess_mode="mostrecent",
)
STORAGE_FAILURES = Counter(
    "soundhive_storage_failures_total",
    "Object storage failures by operation",
    ["operation"],
    registry=_REG,
)

_PID_FILE = re.compile(r"_(\d+)\.db$")


def _constant(pid: int) -> Callable[[], int]:
    return lambda: pid


class ProcessGroupCollector:
    """``process_*`` metrics (CPU seconds, resident/virtual memory, open fds, start time) of
    every live process that writes samples to ``path``, labelled by ``pid``.

    prometheus_client's own process collector only sees the process that answers the scrape,
    which in multiprocess mode is a random one of the group.
    """

    def __init__(self, path: str) -> None:
        self.path = path

    def pids(self) -> list[int]:
        found = set()
        with contextlib.suppress(FileNotFoundError):
            for name in os.listdir(self.path):
                match = _PID_FILE.search(name)
                if match:
                    found.add(int(match.group(1)))
        return sorted(pid for pid in found if os.path.exists(f"/proc/{pid}/stat"))

    def collect(self) -> Iterator[Metric]:
        from prometheus_client import ProcessCollector

        families: dict[str, Metric] = {}
        for pid in self.pids():
            collector = ProcessCollector(pid=_constant(pid), registry=None)
            for family in collector.collect():
                target = families.setdefault(
                    family.name, Metric(family.name, family.documentation, family.type)
                )
                for sample in family.samples:
                    target.add_sample(sample.name, {**sample.labels, "pid": str(pid)}, sample.value)
        yield from families.values()


def multiprocess_registry(path: str) -> CollectorRegistry:
    """A registry that reports the sum of every process writing to ``path`` (for a supervisor
    process that counts nothing itself, e.g. ``soundhive worker --processes N``)."""
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=path)
    registry.register(ProcessGroupCollector(path))
    return registry


def _use_multiprocess_in_default_registry(path: str) -> None:
    """Make ``generate_latest()`` (the API's ``/metrics``) report the whole process group."""
    from prometheus_client import (
        GC_COLLECTOR,
        PLATFORM_COLLECTOR,
        PROCESS_COLLECTOR,
        multiprocess,
    )

    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        with contextlib.suppress(KeyError):
            REGISTRY.unregister(collector)
    multiprocess.MultiProcessCollector(REGISTRY, path=path)
    REGISTRY.register(ProcessGroupCollector(path))
    pid = os.getpid()

    def mark_dead() -> None:
        # "live" gauges (requests in flight) must stop counting a process that has exited
        if os.getpid() == pid:
            with contextlib.suppress(Exception):
                multiprocess.mark_process_dead(pid, path)

    atexit.register(mark_dead)


if _MULTIPROC:
    os.makedirs(_MULTIPROC, exist_ok=True)
    _use_multiprocess_in_default_registry(_MULTIPROC)


def prepare_multiprocess(processes: int) -> str | None:
    """Call in a supervisor before it starts ``processes`` children that count metrics.

    With more than one child (or when the operator set ``PROMETHEUS_MULTIPROC_DIR``), point
    them at one directory: a private temporary one removed at exit, or the operator's, emptied
    of a previous run's samples. Returns the directory, or ``None`` for plain single-process
    metrics.
    """
    path = multiprocess_dir()
    if path is None:
        if processes <= 1:
            return None
        path = tempfile.mkdtemp(prefix="soundhive-metrics-")
        os.environ[MULTIPROC_ENV] = path
        atexit.register(shutil.rmtree, path, True)
        return path
    os.makedirs(path, exist_ok=True)
    for stale in glob.glob(os.path.join(path, "*.db")):
        match = _PID_FILE.search(stale)
        if match and int(match.group(1)) == os.getpid():
            continue  # this process's own open files (it may serve alone)
        with contextlib.suppress(FileNotFoundError):
            os.remove(stale)
    return path
