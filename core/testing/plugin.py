"""pytest fixtures for Soundhive and its skills (see docs/testing.md).

Session: ``soundhive_services`` (PostgreSQL + Redis URLs), ``jwks_server``, a migrated test
database, ``live_server``. Per test: ``soundhive_settings``, ``api`` (an httpx client on the live
server with state wiped after the test), ``token``/``auth`` helpers, ``stub_worker``,
``real_worker``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.testing.jwks import JwksServer
from core.testing.live import LiveServer
from core.testing.services import (
    existing_tables,
    fresh_database,
    postgres_server,
    redis_server,
    truncate_all,
)


@dataclass(frozen=True)
class Services:
    database_url: str
    redis_url: str
    admin_url: str
    """A URL on the same server with rights to create databases (for migration tests)."""


@pytest.fixture(scope="session")
def soundhive_services() -> Iterator[Services]:
    """Real PostgreSQL (a fresh database for this session) and Redis."""
    with (
        postgres_server() as admin_url,
        fresh_database(admin_url) as db_url,
        redis_server() as redis_url,
    ):
        yield Services(database_url=db_url, redis_url=redis_url, admin_url=admin_url)


@pytest.fixture(scope="session")
def jwks_server() -> Iterator[JwksServer]:
    """The external Auth Server, played by a local JWKS endpoint with a token minter."""
    server = JwksServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def soundhive_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("soundhive-data")


@pytest.fixture(scope="session")
def soundhive_env(
    soundhive_services: Services, jwks_server: JwksServer, soundhive_data_dir: Path
) -> dict[str, str]:
    """The ``SOUNDHIVE_*`` variables a test process or subprocess runs with."""
    return {
        "SOUNDHIVE_ENV": "test",
        "SOUNDHIVE_DATABASE_URL": soundhive_services.database_url,
        "SOUNDHIVE_REDIS_URL": soundhive_services.redis_url,
        "SOUNDHIVE_BROKER_URL": soundhive_services.redis_url,
        "SOUNDHIVE_AUTH_JWKS_URL": jwks_server.url,
        "SOUNDHIVE_AUTH_ISSUER": jwks_server.issuer,
        "SOUNDHIVE_AUTH_AUDIENCE": jwks_server.audience,
        "SOUNDHIVE_DATA_DIR": str(soundhive_data_dir),
        "SOUNDHIVE_RATE_LIMIT": "100000/minute",
        "SOUNDHIVE_LOG_JSON": "false",
        "SOUNDHIVE_LOG_LEVEL": "WARNING",
    }


@pytest.fixture(scope="session")
def make_settings(soundhive_env: dict[str, str]) -> Callable[..., Any]:
    """Settings for the test services, with overrides (``skills_disabled=[...]`` …)."""
    from core.settings import Settings

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            key.removeprefix("SOUNDHIVE_").lower(): value for key, value in soundhive_env.items()
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return build


@pytest.fixture
def soundhive_settings(make_settings: Callable[..., Any]) -> Any:
    return make_settings()


@pytest.fixture(scope="session")
def migrated_database(make_settings: Callable[..., Any]) -> str:
    """The session database upgraded to every installed skill's head."""
    from core.kernel import Kernel
    from core.migrate import upgrade

    settings = make_settings()
    upgrade(Kernel(settings))
    return str(settings.database_url)


@pytest.fixture(scope="session")
def live_server(migrated_database: str, make_settings: Callable[..., Any]) -> Iterator[LiveServer]:
    """The whole app (all installed skills) served over real HTTP for the session."""
    from core.app import create_app

    with LiveServer(create_app(make_settings())) as server:
        yield server


def wipe(database_url: str, redis_url: str, data_dir: Path | None = None) -> None:
    """Empty every table, the Redis database (broker queues included) and local objects."""
    import shutil

    import redis

    from core.nearcache import CLEAR_ALL, channel

    truncate_all(database_url, existing_tables(database_url))
    with contextlib.suppress(Exception):
        client = redis.Redis.from_url(redis_url, socket_connect_timeout=1)
        client.flushdb()
        # and the live server's in-memory copies of what was just flushed
        client.publish(channel(client.connection_pool.connection_kwargs.get("db", 0)), CLEAR_ALL)
    if data_dir is not None:
        shutil.rmtree(data_dir / "objects", ignore_errors=True)


@pytest.fixture
def clean_state(
    soundhive_services: Services, migrated_database: str, soundhive_data_dir: Path
) -> Iterator[None]:
    services = soundhive_services
    wipe(services.database_url, services.redis_url, soundhive_data_dir)
    yield
    wipe(services.database_url, services.redis_url, soundhive_data_dir)


class Api(httpx.Client):
    """An httpx client on the live server that knows how to act as a user."""

    def __init__(self, base_url: str, jwks: JwksServer) -> None:
        super().__init__(base_url=base_url, timeout=30)
        self.jwks = jwks

    def auth(self, sub: str, *roles: str, **claims: Any) -> dict[str, str]:  # type: ignore[override]
        """``Authorization`` headers for a user (roles like ``"admin"``)."""
        return {"Authorization": f"Bearer {self.jwks.mint(sub, roles=roles, **claims)}"}


@pytest.fixture
def api(live_server: LiveServer, jwks_server: JwksServer, clean_state: None) -> Iterator[Api]:
    with Api(live_server.url, jwks_server) as client:
        yield client


@pytest.fixture
def token(jwks_server: JwksServer) -> Callable[..., str]:
    return jwks_server.mint


@pytest.fixture
def stub_worker(make_settings: Callable[..., Any], migrated_database: str) -> Iterator[Any]:
    """A kernel on a StubBroker with an in-process Dramatiq worker (unit tests of actors)."""
    import dramatiq
    from dramatiq.brokers.stub import StubBroker

    from core.broker import JobMetrics
    from core.kernel import Kernel

    kernel = Kernel(make_settings(broker_url="stub://"))
    broker = StubBroker()
    from dramatiq.middleware.asyncio import AsyncIO

    broker.add_middleware(AsyncIO())
    broker.add_middleware(JobMetrics())
    kernel.use_broker(broker)
    worker = dramatiq.Worker(broker, worker_timeout=100, worker_threads=2)
    worker.start()
    try:
        yield kernel
    finally:
        worker.stop()
        broker.close()


@pytest.fixture
def real_worker(
    soundhive_env: dict[str, str], migrated_database: str
) -> Iterator[subprocess.Popen[bytes]]:
    """``soundhive worker`` as a real subprocess on the test Redis broker."""
    env = {**os.environ, **soundhive_env}
    proc = subprocess.Popen(
        [sys.executable, "-m", "core.cli", "worker", "--processes", "1", "--threads", "2"], env=env
    )
    time.sleep(1.5)
    assert proc.poll() is None, "worker exited at start-up"
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


def change_cached(client: Any, key: str, value: bytes | str | None = None, ex: int = 60) -> None:
    """Write (or with ``value=None`` delete) a cache entry behind the API's back, as another
    process would through ``Cache``: then publish the drop, so a live server's near cache
    (``core.nearcache``) lets go of its copy too, and give its listener a moment."""
    from core.nearcache import channel, drop_message

    if value is None:
        client.delete(key)
    else:
        client.set(key, value, ex=ex)
    namespace, suffix = key.split(":", 2)[1:]
    db = client.connection_pool.connection_kwargs.get("db", 0)
    client.publish(channel(db), drop_message(namespace, [suffix]))
    time.sleep(0.05)


def wait_for(predicate: Callable[[], Any], timeout: float = 10, interval: float = 0.05) -> Any:
    """Poll until ``predicate()`` is truthy; its last value is returned, or AssertionError."""
    deadline = time.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {value!r})")
        time.sleep(interval)
