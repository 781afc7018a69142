"""Killing Redis under a running server: reads keep answering from PostgreSQL, no 5xx,
and the cache comes back when Redis does."""

from __future__ import annotations

import time
from typing import Any

import httpx

from core.app import create_app
from core.embedded import start_valkey
from core.testing.live import LiveServer


def test_users_me_survives_redis_being_killed(
    make_settings: Any, migrated_database: str, jwks_server: Any, clean_state: None
) -> None:
    valkey, url = start_valkey()
    settings = make_settings(redis_url=url, broker_url=url)
    headers = {"Authorization": f"Bearer {jwks_server.mint('redis-victim')}"}
    try:
        with (
            LiveServer(create_app(settings)) as server,
            httpx.Client(base_url=server.url, timeout=30) as http,
        ):
            first = http.get("/api/v1/users/me", headers=headers)
            assert first.status_code == 200, first.text
            user_id = first.json()["id"]
            assert http.get(f"/api/v1/users/{user_id}", headers=headers).status_code == 200
            valkey.stop()
            started = time.perf_counter()
            for _ in range(20):
                r = http.get("/api/v1/users/me", headers=headers)
                assert r.status_code == 200, r.text
                assert r.json()["id"] == user_id
                other = http.get(f"/api/v1/users/{user_id}", headers=headers)
                assert other.status_code == 200 and other.json()["handle"] == first.json()["handle"]
            # the circuit breaker keeps the outage cheap: no per-request connect timeouts
            assert time.perf_counter() - started < 10
            ready = http.get("/readyz").json()
            assert ready["status"] == "ready" and ready["checks"]["redis"]["ok"] is False
    finally:
        if valkey.is_running():
            valkey.stop()
