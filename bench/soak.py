"""Soak test: the mixed workload at a fixed rate for N minutes, watching for leaks (not a test).

    .venv/bin/python bench/soak.py --minutes 10 --rate 1500
    .venv/bin/python bench/soak.py --minutes 2 --rate 100      # a quick check

Same set-up as ``bench/load.py`` (scratch database, Redis DB, local JWKS, seed,
``soundhive serve --workers N``). Then ``wrk`` runs the mixed scenario (80 % reads / 20 %
writes) in one-minute segments; each connection waits between requests so the total lands
near ``--rate`` (re-calibrated after every segment). Every ``--sample`` seconds it records the
API's RSS (supervisor + workers, psutil), the in-flight gauge and 503 count from ``/metrics``,
and the scratch database's connections. Prints a line per sample, then the figures and a
verdict: zero 5xx, RSS growth under 10 % (first sample after warm-up → last), no pool
exhaustion (no 503, in-flight below the concurrency limit, connections below the pools' cap).
Exit status 0 on PASS, 1 on FAIL.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import signal
import sys
import threading
import time
from dataclasses import dataclass, field

import httpx
import psutil
import psycopg
from load import BenchEnv, Result, log, machine_facts, run_wrk

IN_FLIGHT = re.compile(r"^soundhive_http_requests_in_flight(?:\{[^}]*\})?\s+([0-9.eE+-]+)", re.M)
REQUESTS = re.compile(r"^soundhive_http_requests_total\{(.*)\}\s+([0-9.eE+-]+)$", re.M)
"""Labels up to the line's last ``}``: route templates contain braces (``/tracks/{track_id}``)."""


@dataclass
class Sample:
    """One observation of the running API."""

    t: float
    rss_mb: float
    in_flight: float
    total: float
    s503: float
    s5xx: float
    db_connections: int


@dataclass
class Watch:
    """Samples taken by a background thread while wrk runs."""

    samples: list[Sample] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)


def scrape(url: str) -> tuple[float, float, float, float]:
    """In-flight gauge (summed over workers), requests, 503s and 5xx from ``/metrics``."""
    text = httpx.get(f"{url}/metrics", timeout=5).text
    in_flight = sum(float(v) for v in IN_FLIGHT.findall(text))
    total = s503 = s5xx = 0.0
    for labels, value in REQUESTS.findall(text):
        status = re.search(r'status="(\d+)"', labels)
        code = int(status.group(1)) if status else 0
        total += float(value)
        s503 += float(value) if code == 503 else 0
        s5xx += float(value) if code >= 500 else 0
    return in_flight, total, s503, s5xx


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and all its descendants, MiB."""
    proc = psutil.Process(pid)
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += p.memory_info().rss
    return total / 2**20


def sampler(env: BenchEnv, watch: Watch, every: float, started: float) -> None:
    """Sample until told to stop."""
    assert env.api is not None
    while not watch.stop.is_set():
        try:
            in_flight, total, s503, s5xx = scrape(env.api_url)
            with psycopg.connect(env.admin_url, autocommit=True) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (env.db_name,)
                ).fetchone()
            s = Sample(
                t=time.monotonic() - started,
                rss_mb=rss_mb(env.api.pid),
                in_flight=in_flight,
                total=total,
                s503=s503,
                s5xx=s5xx,
                db_connections=int(row[0]) if row else 0,
            )
            watch.samples.append(s)
            log(
                f"t={s.t:5.0f}s RSS {s.rss_mb:6.1f} MiB in-flight {s.in_flight:3.0f} "
                f"requests {s.total:9.0f} 5xx {s.s5xx:.0f} (503 {s.s503:.0f}) "
                f"db connections {s.db_connections}"
            )
        except Exception as exc:  # a failed sample is reported, never fatal
            log(f"sample failed: {type(exc).__name__}: {exc}")
        watch.stop.wait(every)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--minutes", type=float, default=10)
    p.add_argument("--rate", type=float, required=True, help="target requests per second")
    p.add_argument("--segment", type=float, default=60, help="seconds per wrk segment")
    p.add_argument("--sample", type=float, default=10, help="seconds between samples")
    p.add_argument("--warmup", type=float, default=30, help="seconds before the RSS baseline")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--users", type=int, default=1000)
    p.add_argument("--tracks", type=int, default=5000)
    p.add_argument("--follows", type=int, default=30)
    p.add_argument("--redis-db", type=int, default=8)
    p.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--concurrency-limit", type=int, default=512, help="the API's, for the verdict")
    p.add_argument("--pool-cap", type=int, default=30, help="pool_size + max_overflow per worker")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    facts = machine_facts()
    segments: list[Result] = []
    watch = Watch()
    with BenchEnv(args) as env:
        env.setup()
        env.start_api()
        env.smoke()
        env.warm_tracks()
        started = time.monotonic()
        thread = threading.Thread(
            target=sampler, args=(env, watch, args.sample, started), daemon=True
        )
        thread.start()
        # each connection: one request every connections / rate seconds, minus its latency
        delay_ms = max(0.0, args.connections / args.rate * 1000 - 5)
        end = started + args.minutes * 60
        while (left := end - time.monotonic()) > 1:
            seg = min(args.segment, left)
            r = run_wrk(
                env.api_url,
                "mixed",
                env.data_file,
                duration=seg,
                threads=args.threads,
                connections=args.connections,
                delay_ms=delay_ms,
            )
            segments.append(r)
            log(
                f"segment: {r.rps:,.0f} req/s (target {args.rate:,.0f}, delay {delay_ms:.1f} ms) "
                f"p99 {r.p99_ms:.1f} ms 5xx {r.s5xx} non-2xx {r.non2xx} "
                f"socket errors {r.socket_errors} load1 {r.load1:.2f}"
            )
            if r.rps > 0:  # steer towards the target rate
                cycle = args.connections / r.rps * 1000  # observed ms per request per connection
                service = max(0.0, cycle - delay_ms)
                delay_ms = max(0.0, args.connections / args.rate * 1000 - service)
        watch.stop.set()
        thread.join(timeout=30)
        final = watch.samples[-1] if watch.samples else None
    return report(args, facts, segments, watch.samples, final)


def report(
    args: argparse.Namespace,
    facts: str,
    segments: list[Result],
    samples: list[Sample],
    final: Sample | None,
) -> int:
    """Print the figures and the verdict; 0 on PASS."""
    requests = sum(r.raw["requests"] for r in segments)
    seconds = sum(r.raw["duration_us"] for r in segments) / 1e6
    s5xx = sum(r.s5xx for r in segments)
    non2xx = sum(r.non2xx for r in segments)
    sock = sum(r.socket_errors for r in segments)
    worst_p99 = max((r.p99_ms for r in segments), default=0.0)
    warm = [s for s in samples if s.t >= args.warmup] or samples
    rss0 = warm[0].rss_mb if warm else 0.0
    rss1 = samples[-1].rss_mb if samples else 0.0
    growth = (rss1 - rss0) / rss0 if rss0 else 0.0
    peak_in_flight = max((s.in_flight for s in samples), default=0.0)
    peak_db = max((s.db_connections for s in samples), default=0)
    s503 = final.s503 if final else 0.0
    srv5xx = final.s5xx if final else 0.0
    pool_cap = args.pool_cap * args.workers
    print()
    print(f"Machine: {facts}")
    print(
        f"Soak: {args.minutes:g} min mixed 80/20 at target {args.rate:,.0f} req/s, "
        f"wrk -t{args.threads} -c{args.connections}, {args.workers} API workers"
    )
    print(
        f"  requests {requests:,} in {seconds:,.0f} s = {requests / seconds if seconds else 0:,.0f}"
        f" req/s; worst segment p99 {worst_p99:.1f} ms"
    )
    print(
        f"  5xx (client) {s5xx}, 5xx (server /metrics) {srv5xx:.0f}, 503 {s503:.0f}, "
        f"non-2xx/3xx {non2xx}, socket errors {sock}"
    )
    print(
        f"  RSS {rss0:.1f} MiB (t={warm[0].t if warm else 0:.0f}s) -> {rss1:.1f} MiB: "
        f"{growth:+.1%}; peak in-flight {peak_in_flight:.0f} (limit {args.concurrency_limit}/"
        f"worker); peak DB connections {peak_db} (pools' cap {pool_cap})"
    )
    checks = {
        "zero 5xx": s5xx == 0 and srv5xx == 0,
        "RSS growth < 10 %": growth < 0.10,
        "no pool exhaustion": s503 == 0
        and peak_in_flight < args.concurrency_limit
        and peak_db < pool_cap,
        "no socket errors": sock == 0,
    }
    failed = [name for name, ok in checks.items() if not ok]
    verdict = "PASS" if not failed else "FAIL (" + ", ".join(failed) + ")"
    print(f"VERDICT: {verdict}")
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
