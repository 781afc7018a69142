"""HTTP load benchmark of the API against a bare FastAPI baseline, in one command (not a test).

    .venv/bin/python bench/load.py                      # every scenario, 15 s each
    .venv/bin/python bench/load.py --duration 20 --access-log both

Needs ``wrk`` (``apt-get install wrk``), PostgreSQL and Redis on 127.0.0.1. It creates a
scratch database ``bench_<random>`` (dropped at the end), uses Redis DB ``--redis-db``
(flushed before and after), serves a local JWKS, migrates, seeds (``--users`` profiles,
``--tracks`` ready tracks with tags, ``--follows`` follows per user, the search index), then
starts ``soundhive serve --workers N`` and ``bench/baseline_app.py`` under uvicorn with the
same number of workers, and runs each scenario with ``wrk -t -c -d`` and
``bench/scenarios.lua``. Prints a table (req/s, p50/p95/p99, non-2xx/3xx, 5xx, socket errors,
ratio to the baseline, 1-minute load average) and the issue's targets as PASS/FAIL.

Only loopback traffic. Background workers (Dramatiq) are not started: the events the writes
emit wait in the scratch Redis DB's queues, which are flushed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg
import redis

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
VENV_BIN = Path(sys.executable).parent
LUA = BENCH / "scenarios.lua"
SCENARIOS = (
    "baseline",
    "floor",
    "healthz",
    "anon",
    "track",
    "me",
    "feed",
    "search",
    "like",
    "play",
    "mixed",
)
BASELINE_SERVED = ("baseline", "floor")
"""Scenarios served by ``bench/baseline_app.py`` rather than by Soundhive."""
LABELS = {
    "baseline": "baseline: bare FastAPI GET /ping",
    "floor": "floor: FastAPI alone, shaped like GET /tracks/{id}",
    "healthz": "GET /healthz (API stack, no /api/ middleware)",
    "anon": "GET /tracks/{id} (cached, anonymous)",
    "track": "GET /tracks/{id} (cached)",
    "me": "GET /users/me",
    "feed": "GET /feed",
    "search": "GET /search/tracks?q=",
    "like": "POST/DELETE /tracks/{id}/like",
    "play": "POST /tracks/{id}/play",
    "mixed": "mixed 80 % reads / 20 % writes",
}
WORDS = [
    "night",
    "walk",
    "rain",
    "city",
    "neon",
    "ocean",
    "summer",
    "winter",
    "dream",
    "river",
    "morning",
    "echo",
    "velvet",
    "golden",
    "midnight",
    "lofi",
    "chill",
    "jazz",
    "piano",
    "guitar",
    "drift",
    "sunset",
    "coffee",
    "study",
    "focus",
]
TAGS = [
    "lofi",
    "chill",
    "jazz",
    "piano",
    "ambient",
    "house",
    "techno",
    "hiphop",
    "rock",
    "indie",
    "pop",
    "soul",
    "funk",
    "folk",
    "acoustic",
    "electronic",
    "beats",
    "study",
    "sleep",
    "focus",
]


def free_port() -> int:
    """An unused loopback TCP port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Result:
    """One wrk run, parsed from the script's ``BENCH_JSON`` line."""

    scenario: str
    label: str
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    non2xx: int
    s5xx: int
    socket_errors: int
    load1: float
    raw: dict[str, Any] = field(default_factory=dict)
    api_cpu_ms: float | None = None
    """CPU time of the server's processes per request (immune to other load on the host)."""
    pg_cpu_ms: float | None = None
    """CPU time of the scratch database's PostgreSQL backends per request."""

    @property
    def errors(self) -> int:
        return self.non2xx + self.socket_errors


def run_wrk(
    url: str,
    scenario: str,
    data_file: Path,
    *,
    duration: float,
    threads: int,
    connections: int,
    label: str | None = None,
    delay_ms: float = 0,
    timeout: int = 10,
) -> Result:
    """Run one wrk pass and parse its summary."""
    load1 = os.getloadavg()[0]
    env = {**os.environ, "BENCH_DELAY_MS": f"{delay_ms:.3f}"}
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        f"--timeout={timeout}s",
        "--latency",
        "-s",
        str(LUA),
        url,
        "--",
        scenario,
        str(data_file),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stdout}\n{out.stderr}")
    raw = json.loads(line.removeprefix("BENCH_JSON "))
    seconds = raw["duration_us"] / 1e6
    return Result(
        scenario=scenario,
        label=label or LABELS.get(scenario, scenario),
        rps=raw["requests"] / seconds if seconds else 0.0,
        p50_ms=raw["p50"] / 1000,
        p95_ms=raw["p95"] / 1000,
        p99_ms=raw["p99"] / 1000,
        non2xx=raw["non2xx3xx"],
        s5xx=raw["s5xx"],
        socket_errors=raw["connect"] + raw["read"] + raw["write"] + raw["timeout"],
        load1=load1,
        raw=raw,
    )


def tree_cpu(pid: int) -> dict[int, float]:
    """User + system CPU seconds of ``pid`` and its descendants, by pid."""
    out: dict[int, float] = {}
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return out
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            t = p.cpu_times()
            out[p.pid] = t.user + t.system
    return out


def backend_cpu(db_name: str) -> dict[int, float]:
    """CPU seconds of the PostgreSQL backends serving ``db_name`` (their title names it)."""
    out: dict[int, float] = {}
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or ())
        if cmd.startswith("postgres:") and f" {db_name} " in cmd:
            with contextlib.suppress(psutil.NoSuchProcess):
                t = p.cpu_times()
                out[p.pid] = t.user + t.system
    return out


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds spent between two snapshots (new processes count from zero)."""
    return sum(v - before.get(pid, 0.0) for pid, v in after.items())


class BenchEnv:
    """Scratch database + Redis DB + JWKS + seeded data + the API and baseline processes."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="soundhive-bench-"))
        self.db_name = f"bench_{secrets.token_hex(4)}"
        self.admin_url: str = args.admin_url
        base = self.admin_url.rsplit("/", 1)[0]
        self.db_url = f"{base}/{self.db_name}"
        self.redis_url = f"redis://127.0.0.1:6379/{args.redis_db}"
        self.data_file = self.tmp / "data.txt"
        self.api: subprocess.Popen[bytes] | None = None
        self.baseline: subprocess.Popen[bytes] | None = None
        self.api_port = free_port()
        self.baseline_port = free_port()
        self.jwks: Any = None
        self.env: dict[str, str] = {}
        self.has_search = False

    # -- lifecycle ---------------------------------------------------------------------
    def __enter__(self) -> BenchEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def setup(self) -> None:
        """Create the database, start the JWKS, migrate and seed; start nothing else."""
        from core.testing.jwks import JwksServer

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.db_name}"')
        redis.Redis.from_url(self.redis_url).flushdb()
        self.jwks = JwksServer().start()
        (self.tmp / "metrics").mkdir()
        self.env = {
            **os.environ,
            "SOUNDHIVE_ENV": "test",
            "SOUNDHIVE_DATABASE_URL": self.db_url,
            "SOUNDHIVE_REDIS_URL": self.redis_url,
            "SOUNDHIVE_DATA_DIR": str(self.tmp / "data"),
            "SOUNDHIVE_RATE_LIMIT": "1000000/minute",
            "SOUNDHIVE_PLAYS_RATE_LIMIT": "1000000/minute",
            "SOUNDHIVE_LOG_LEVEL": "WARNING",
            "SOUNDHIVE_AUTH_JWKS_URL": self.jwks.url,
            "SOUNDHIVE_AUTH_ISSUER": self.jwks.issuer,
            "SOUNDHIVE_AUTH_AUDIENCE": self.jwks.audience,
            "PROMETHEUS_MULTIPROC_DIR": str(self.tmp / "metrics"),
        }
        self.env.pop("SOUNDHIVE_CONFIG_FILE", None)
        log(f"scratch database {self.db_name}, Redis {self.redis_url}, migrating …")
        subprocess.run(
            [str(VENV_BIN / "soundhive"), "migrate"],
            env=self.env,
            cwd=self.tmp,
            check=True,
            capture_output=True,
        )
        self.seed()

    def close(self) -> None:
        """Stop every process this run started, drop the database, flush the Redis DB."""
        self.stop_api()
        self.stop_baseline()
        if self.jwks is not None:
            self.jwks.stop()
        try:
            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
        except psycopg.Error as exc:
            log(f"could not drop {self.db_name}: {exc}")
        try:
            redis.Redis.from_url(self.redis_url).flushdb()
        except redis.RedisError as exc:
            log(f"could not flush {self.redis_url}: {exc}")
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- seed --------------------------------------------------------------------------
    def seed(self) -> None:
        """Profiles, ready public tracks with tags, follows, counts, the search index."""
        a = self.args
        started = time.perf_counter()
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO user_profiles (id, sub, handle, display_name, created_at, updated_at)"
                " SELECT gen_random_uuid(), 'bench-' || i, 'bench_' || i, 'Bench user ' || i,"
                " now(), now() FROM generate_series(1, %s) i",
                (a.users,),
            )
            conn.execute(
                "CREATE TEMP TABLE u AS SELECT id, row_number() OVER (ORDER BY sub) - 1 AS rn "
                "FROM user_profiles"
            )
            conn.execute(
                "INSERT INTO tracks (id, owner_id, title, artist_name, description, visibility,"
                " status, object_key, content_type, file_size, format, duration_ms, ready_at,"
                " created_at, updated_at)"
                " SELECT gen_random_uuid(), u.id,"
                "  initcap(w.words[1 + i %% 25] || ' ' || w.words[1 + (i * 7) %% 25]) || ' ' || i,"
                "  'Bench artist ' || (i %% 97), 'A ' || w.words[1 + (i * 3) %% 25] || ' tune',"
                "  'public', 'ready', 'audio/bench/' || i || '.mp3', 'audio/mpeg', 4000000,"
                "  'mp3', 180000, now(), now() - make_interval(mins => i), now()"
                " FROM generate_series(1, %s) i"
                " JOIN u ON u.rn = (i * 7919) %% %s"
                " CROSS JOIN (SELECT %s::text[] AS words) w",
                (a.tracks, a.users, WORDS),
            )
            conn.execute(
                "INSERT INTO tags (name) SELECT unnest(%s::text[]) ON CONFLICT DO NOTHING",
                (TAGS,),
            )
            conn.execute(
                "INSERT INTO track_tags (track_id, tag_id, position)"
                " SELECT t.id, tg.id, p.pos FROM"
                " (SELECT id, row_number() OVER (ORDER BY id) AS n FROM tracks) t"
                " CROSS JOIN (VALUES (0), (1)) p(pos)"
                " JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM tags) tg"
                "  ON tg.k = (t.n * (1 + 6 * p.pos) + p.pos) %% %s"
                " ON CONFLICT DO NOTHING",
                (len(TAGS),),
            )
            conn.execute(
                "INSERT INTO follows (id, follower_id, following_id, created_at)"
                " SELECT gen_random_uuid(), a.id, b.id, now()"
                " FROM u a CROSS JOIN generate_series(1, %s) k"
                " JOIN u b ON b.rn = (a.rn + k * 37) %% %s WHERE a.id <> b.id"
                " ON CONFLICT DO NOTHING",
                (a.follows, a.users),
            )
            conn.execute(
                "UPDATE user_profiles p SET"
                " followers_count = (SELECT count(*) FROM follows WHERE following_id = p.id),"
                " following_count = (SELECT count(*) FROM follows WHERE follower_id = p.id),"
                " tracks_count = (SELECT count(*) FROM tracks WHERE owner_id = p.id)"
            )
            conn.execute("ANALYZE")
            track_ids = [str(r[0]) for r in conn.execute("SELECT id FROM tracks").fetchall()]
        try:
            from skills.tag_search_discovery.indexer import rebuild

            rebuild(self.db_url)
            self.has_search = True
        except ImportError:
            log("tag-search-discovery is not installed: the search scenario is skipped")
        lines = [
            f"token {self.jwks.mint(f'bench-{i}', expires_in=6 * 3600)}"
            for i in range(1, a.users + 1)
        ]
        lines += [f"track {t}" for t in track_ids]
        lines += [f"query {w}" for w in WORDS + TAGS]
        lines += [f"query {WORDS[i]} {WORDS[(i * 7) % len(WORDS)]}" for i in range(len(WORDS))]
        self.data_file.write_text("\n".join(lines) + "\n")
        self.track_ids = track_ids
        self.tokens = [ln.split(" ", 1)[1] for ln in lines if ln.startswith("token ")]
        log(
            f"seeded {a.users} users, {len(track_ids)} tracks, {a.follows} follows each "
            f"in {time.perf_counter() - started:.1f} s"
        )

    # -- processes ---------------------------------------------------------------------
    def start_api(self, *, log_level: str = "WARNING") -> None:
        """``soundhive serve --workers N`` in its own process group; waits for /healthz."""
        # as deployed: a public URL is configured (no per-request served-URL detection)
        env = {
            **self.env,
            "SOUNDHIVE_LOG_LEVEL": log_level,
            "SOUNDHIVE_PUBLIC_URL": f"http://127.0.0.1:{self.api_port}",
        }
        out = open(self.tmp / f"api-{log_level.lower()}.log", "wb")  # noqa: SIM115 - child owns it
        self.api = subprocess.Popen(
            [
                str(VENV_BIN / "soundhive"),
                "serve",
                "--workers",
                str(self.args.workers),
                "--port",
                str(self.api_port),
            ],
            env=env,
            cwd=self.tmp,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_healthy(f"http://127.0.0.1:{self.api_port}/healthz", self.api)

    def stop_api(self) -> None:
        stop(self.api)
        self.api = None

    def start_baseline(self) -> None:
        """The bare FastAPI app under uvicorn with the same number of workers."""
        self.baseline = subprocess.Popen(
            [
                str(VENV_BIN / "uvicorn"),
                "baseline_app:app",
                "--app-dir",
                str(BENCH),
                "--workers",
                str(self.args.workers),
                "--port",
                str(self.baseline_port),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            env=self.env,
            cwd=self.tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_healthy(f"http://127.0.0.1:{self.baseline_port}/ping", self.baseline)

    def stop_baseline(self) -> None:
        stop(self.baseline)
        self.baseline = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    # -- checks ------------------------------------------------------------------------
    def smoke(self) -> dict[str, int]:
        """One request per API scenario: each must answer 2xx before it is measured."""
        h = {"Authorization": f"Bearer {self.tokens[0]}"}
        t = self.track_ids[0]
        calls: dict[str, tuple[str, str, dict[str, Any] | None]] = {
            "track": ("GET", f"/api/v1/tracks/{t}", None),
            "me": ("GET", "/api/v1/users/me", None),
            "feed": ("GET", "/api/v1/feed", None),
            "search": ("GET", "/api/v1/search/tracks?q=night", None),
            "like": ("POST", f"/api/v1/tracks/{t}/like", None),
            "play": ("POST", f"/api/v1/tracks/{t}/play", {}),
        }
        statuses = {}
        with httpx.Client(base_url=self.api_url, timeout=10) as client:
            for name, (method, path, body) in calls.items():
                r = client.request(method, path, headers=h, json=body)
                statuses[name] = r.status_code
                if r.status_code >= 300:
                    log(f"smoke {name}: {r.status_code} {r.text[:300]}")
                elif name == "feed" and not r.json().get("items"):
                    log("smoke feed: empty feed")
            client.delete(f"/api/v1/tracks/{t}/like", headers=h)
        return statuses

    def warm_tracks(self) -> None:
        """Read every track once so ``GET /tracks/{id}`` runs from the cache."""

        async def go() -> None:
            sem = asyncio.Semaphore(32)
            async with httpx.AsyncClient(base_url=self.api_url, timeout=30) as client:

                async def one(i: int, track: str) -> None:
                    async with sem:
                        token = self.tokens[i % len(self.tokens)]
                        await client.get(
                            f"/api/v1/tracks/{track}", headers={"Authorization": f"Bearer {token}"}
                        )

                await asyncio.gather(*(one(i, t) for i, t in enumerate(self.track_ids)))

        started = time.perf_counter()
        asyncio.run(go())
        log(f"warmed {len(self.track_ids)} track reads in {time.perf_counter() - started:.1f} s")


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
    """Poll ``url`` until it answers 200; fail early if the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not become healthy in {timeout} s")


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM the process group this run started (uvicorn's supervisor and its workers)."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
    except ProcessLookupError:
        pass
    return None


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def table(results: list[Result], baseline_rps: float | None) -> str:
    """A Markdown table of the results."""
    head = (
        "| scenario | req/s | p50 ms | p95 ms | p99 ms | non-2xx/3xx | 5xx | socket errors "
        "| vs baseline | API CPU ms/req | PG CPU ms/req | load1 |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    rows = [head]
    for r in results:
        ratio = f"{r.rps / baseline_rps:.0%}" if baseline_rps else "-"
        api = f"{r.api_cpu_ms:.2f}" if r.api_cpu_ms is not None else "-"
        pg = f"{r.pg_cpu_ms:.2f}" if r.pg_cpu_ms is not None else "-"
        rows.append(
            f"| {r.label} | {r.rps:,.0f} | {r.p50_ms:.1f} | {r.p95_ms:.1f} | {r.p99_ms:.1f} "
            f"| {r.non2xx} | {r.s5xx} | {r.socket_errors} | {ratio} | {api} | {pg} "
            f"| {r.load1:.2f} |"
        )
    return "\n".join(rows)


def verdicts(results: dict[str, Result]) -> list[str]:
    """The issue's targets, PASS or FAIL."""
    out = []
    base, track, mixed = results.get("baseline"), results.get("track"), results.get("mixed")
    if base and track:
        ok = track.rps >= 0.5 * base.rps
        out.append(
            f"{'PASS' if ok else 'FAIL'} cached track read {track.rps / base.rps:.0%} "
            "of baseline (target >= 50 %)"
        )
    floor = results.get("floor")
    if base and floor:
        out.append(
            f"INFO  FastAPI's own floor for that read: {floor.rps / base.rps:.0%} of baseline"
            + (f"; Soundhive's read is {track.rps / floor.rps:.0%} of it" if track else "")
        )
    if mixed:
        ok = mixed.rps >= 3000 and mixed.p99_ms < 100 and mixed.errors == 0
        out.append(
            f"{'PASS' if ok else 'FAIL'} mixed {mixed.rps:,.0f} req/s, p99 "
            f"{mixed.p99_ms:.1f} ms, {mixed.errors} errors "
            "(target >= 3,000 req/s, p99 < 100 ms, 0 errors)"
        )
    for name in ("like", "play"):
        r = results.get(name)
        if r:
            ok = r.rps >= 1500 and r.errors == 0
            out.append(
                f"{'PASS' if ok else 'FAIL'} {name} writes {r.rps:,.0f} req/s, "
                f"{r.errors} errors (target >= 1,500 req/s)"
            )
    return out


def machine_facts() -> str:
    """CPU model, cores, memory, wrk and Python versions, load average."""
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        "?",
    )
    mem = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/meminfo").read_text().splitlines()
            if ln.startswith("MemTotal")
        ),
        "?",
    )
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    wrk_version = (wrk.stdout or wrk.stderr).splitlines()[0] if (wrk.stdout or wrk.stderr) else "?"
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{cpu}, {os.cpu_count()} cores, {mem}; Python {sys.version.split()[0]}; "
        f"{wrk_version}; load average {load}"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--duration", type=float, default=15, help="seconds per scenario")
    p.add_argument("--threads", type=int, default=2, help="wrk threads")
    p.add_argument("--connections", type=int, default=32, help="wrk connections")
    p.add_argument("--workers", type=int, default=2, help="API (and baseline) worker processes")
    p.add_argument("--users", type=int, default=1000)
    p.add_argument("--tracks", type=int, default=5000)
    p.add_argument("--follows", type=int, default=30, help="accounts each user follows")
    p.add_argument("--redis-db", type=int, default=7)
    p.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument(
        "--scenarios", default=",".join(SCENARIOS), help=f"comma list of {', '.join(SCENARIOS)}"
    )
    p.add_argument(
        "--access-log",
        choices=("off", "on", "both"),
        default="off",
        help="API at WARNING (off), INFO (on: a JSON line per request), or both",
    )
    p.add_argument("--pause", type=float, default=3, help="seconds of rest between scenarios")
    p.add_argument("--json", type=Path, help="also write the results as JSON here")
    p.add_argument(
        "--hold",
        action="store_true",
        help="keep the stack up after the run until Ctrl+C (for profiling)",
    )
    return p.parse_args(argv)


def run_scenarios(
    env: BenchEnv, names: list[str], *, suffix: str = "", pause: float = 3
) -> list[Result]:
    """Run ``names`` against the running API (the baseline against its own server)."""
    a = env.args
    results = []
    for name in names:
        if name == "search" and not env.has_search:
            continue
        on_baseline = name in BASELINE_SERVED
        url = f"http://127.0.0.1:{env.baseline_port}" if on_baseline else env.api_url
        server = env.baseline if on_baseline else env.api
        cpu0 = tree_cpu(server.pid) if server else {}
        pg0 = backend_cpu(env.db_name)
        r = run_wrk(
            url,
            name,
            env.data_file,
            duration=a.duration,
            threads=a.threads,
            connections=a.connections,
            label=LABELS[name] + suffix,
        )
        served = r.raw["requests"] or 1
        if server:
            r.api_cpu_ms = cpu_delta(cpu0, tree_cpu(server.pid)) / served * 1000
        r.pg_cpu_ms = cpu_delta(pg0, backend_cpu(env.db_name)) / served * 1000
        log(
            f"{r.label}: {r.rps:,.0f} req/s p50 {r.p50_ms:.1f} p99 {r.p99_ms:.1f} ms "
            f"CPU/req API {r.api_cpu_ms or 0:.2f} PG {r.pg_cpu_ms or 0:.2f} ms "
            f"non-2xx {r.non2xx} (5xx {r.s5xx}) socket errors {r.socket_errors} load1 {r.load1:.2f}"
        )
        results.append(r)
        time.sleep(pause)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    names = [s for s in args.scenarios.split(",") if s]
    unknown = set(names) - set(SCENARIOS)
    if unknown:
        print(f"unknown scenarios: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    # SIGTERM (and SIGINT when backgrounded) unwind through BenchEnv.close(): no leftovers
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    facts = machine_facts()
    results: list[Result] = []
    with BenchEnv(args) as env:
        env.setup()
        baseline_names = [n for n in names if n in BASELINE_SERVED]
        if baseline_names:
            env.start_baseline()
            results += run_scenarios(env, baseline_names, pause=args.pause)
            env.stop_baseline()
        api_names = [n for n in names if n not in BASELINE_SERVED]
        levels = {"off": ["WARNING"], "on": ["INFO"], "both": ["WARNING", "INFO"]}[args.access_log]
        for level in levels:
            env.start_api(log_level=level)
            smoke = env.smoke()
            if not env.has_search or smoke.get("search", 200) >= 300:
                api_names = [n for n in api_names if n != "search"]
            if {"track", "anon", "mixed"} & set(api_names):
                env.warm_tracks()
            suffix = ", access log on" if level == "INFO" else ""
            results += run_scenarios(env, api_names, suffix=suffix, pause=args.pause)
            if args.hold:
                log(f"holding {env.api_url} (API pid {env.api.pid if env.api else '?'}); Ctrl+C")
                try:
                    while True:
                        time.sleep(3600)
                except KeyboardInterrupt:
                    pass
            env.stop_api()
    base = next((r.rps for r in results if r.scenario == "baseline"), None)
    print()
    print(f"Machine: {facts}")
    print(
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s, "
        f"{args.workers} API workers, {args.users} users / {args.tracks} tracks"
    )
    print()
    print(table(results, base))
    print()
    first: dict[str, Result] = {}
    for r in results:
        first.setdefault(r.scenario, r)
    for line in verdicts(first):
        print(line)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "machine": facts,
                    "args": {k: str(v) for k, v in vars(args).items()},
                    "results": [{**r.__dict__, "raw": r.raw} for r in results],
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
