"""Run an app under uvicorn on a free loopback port in a background thread (real HTTP)."""

from __future__ import annotations

import threading
import time

import uvicorn
from fastapi import FastAPI

from core.embedded import free_port


class LiveServer:
    def __init__(self, app: FastAPI, *, port: int | None = None) -> None:
        """``port``: serve there (pick it with ``free_port()`` when the app's settings must
        know the URL before the app is built, e.g. ``public_url``); default: a free one."""
        self.app = app
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
            access_log=False,
            log_config=None,
            timeout_graceful_shutdown=2,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def kernel(self):  # type: ignore[no-untyped-def]
        return self.app.state.kernel

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.time() > deadline:
                raise RuntimeError("test server failed to start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
