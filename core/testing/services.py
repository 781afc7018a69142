"""Where tests find PostgreSQL and Redis: the environment, else testcontainers when Docker
answers, else embedded servers (so a machine with only Python can run the suite)."""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

from core.db import async_url


def _docker_answers() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=2)
        client.ping()
        return True
    except Exception:
        return False


def plain_url(url: str) -> str:
    """A libpq URL (psycopg.connect) from any SQLAlchemy-style PostgreSQL URL."""
    return async_url(url).replace("postgresql+psycopg://", "postgresql://", 1)


def with_database(url: str, database: str) -> str:
    """Same server, another database; works for host and unix-socket URLs."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(database=database).render_as_string(hide_password=False)


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """An admin URL for a PostgreSQL server tests may create databases on."""
    env = os.environ.get("SOUNDHIVE_TEST_DATABASE_URL") or os.environ.get("SOUNDHIVE_DATABASE_URL")
    if env:
        yield env
        return
    if _docker_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:17-alpine", driver=None) as container:
            yield container.get_connection_url()
        return
    from core.embedded import start_postgres

    folder = Path(tempfile.mkdtemp(prefix="soundhive-pg-"))
    folder.chmod(0o777)
    server, url = start_postgres(folder / "data")
    try:
        yield url
    finally:
        with contextlib.suppress(Exception):
            server.destroy()


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    env = os.environ.get("SOUNDHIVE_TEST_REDIS_URL") or os.environ.get("SOUNDHIVE_REDIS_URL")
    if env:
        yield env
        return
    if _docker_answers():
        from testcontainers.redis import RedisContainer

        with RedisContainer("redis:7-alpine") as container:
            host = container.get_container_host_ip()
            port = container.get_exposed_port(6379)
            yield f"redis://{host}:{port}/0"
        return
    from core.embedded import start_valkey

    server, url = start_valkey()
    try:
        yield url
    finally:
        with contextlib.suppress(Exception):
            server.stop()


@contextlib.contextmanager
def fresh_database(admin_url: str, prefix: str = "soundhive_test") -> Iterator[str]:
    """Create an empty database for this test session and drop it afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(plain_url(admin_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(admin_url, name)
    finally:
        with (
            contextlib.suppress(Exception),
            psycopg.connect(plain_url(admin_url), autocommit=True) as conn,
        ):
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def truncate_all(url: str, tables: list[str]) -> None:
    if not tables:
        return
    quoted = ", ".join(f'"{t}"' for t in tables)
    with psycopg.connect(plain_url(url), autocommit=True) as conn:
        conn.execute(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE")


def existing_tables(url: str) -> list[str]:
    with psycopg.connect(plain_url(url)) as conn:
        rows: list[Any] = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'alembic_version'"
        ).fetchall()
    return [row[0] for row in rows]
