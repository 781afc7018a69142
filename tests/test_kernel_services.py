"""Cache, rate limit, errors, middleware and settings against real Redis/PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import text

from core import metrics
from core.app import create_app
from core.auth import CurrentPrincipal
from core.cache import Cache, Circuit, UndeclaredCacheKey, make_redis
from core.db import SessionDep
from core.errors import NotFound
from core.kernel import Kernel
from core.settings import Settings, parse_rate
from core.skill import CacheKey
from core.testing.live import LiveServer
from tests.test_kernel_plugins import plugin

DOWN_REDIS = "redis://127.0.0.1:1/0"


def cache_for(url: str) -> Cache:
    return Cache(make_redis(url), {"things": CacheKey("things", 60)}, Circuit(cooldown=0.5))


def counter(namespace: str, result: str) -> float:
    return metrics.CACHE_REQUESTS.labels(namespace, result)._value.get()


async def test_get_or_set_counts_hits_and_misses(soundhive_services: Any) -> None:
    cache = cache_for(soundhive_services.redis_url)
    await cache.invalidate("things", "a")
    calls = 0

    async def load() -> dict[str, int]:
        nonlocal calls
        calls += 1
        return {"value": calls}

    misses, hits = counter("things", "miss"), counter("things", "hit")
    assert await cache.get_or_set("things", "a", load) == {"value": 1}
    assert await cache.get_or_set("things", "a", load) == {"value": 1}
    assert calls == 1
    assert counter("things", "miss") == misses + 1 and counter("things", "hit") == hits + 1
    assert await cache.client.ttl("sh:things:a") <= 60
    await cache.invalidate("things", "a")
    assert await cache.get_or_set("things", "a", load) == {"value": 2}
    await cache.invalidate_namespace("things")
    assert await cache.get("things", "a") is None
    await cache.client.aclose()


async def test_cache_falls_through_when_redis_is_down() -> None:
    cache = cache_for(DOWN_REDIS)

    async def load() -> str:
        return "from-source"

    assert await cache.get_or_set("things", "a", load) == "from-source"
    assert not cache.circuit.closed  # the circuit is open: next calls skip Redis at once
    assert await cache.get_or_set("things", "a", load) == "from-source"
    await cache.set("things", "a", 1)
    await cache.invalidate("things", "a")
    await cache.invalidate_namespace("things")


async def test_undeclared_namespace_is_a_programming_error(soundhive_services: Any) -> None:
    cache = cache_for(soundhive_services.redis_url)
    with pytest.raises(UndeclaredCacheKey):
        await cache.get("nobody-declared-this", "x")


class Item(BaseModel):
    name: str
    size: int


def demo_router() -> APIRouter:
    router = APIRouter(prefix="/demo")

    @router.post("/items")
    async def create(item: Item, principal: CurrentPrincipal) -> Item:
        return item

    @router.get("/missing")
    async def missing() -> None:
        raise NotFound("No such thing.", code="THING_NOT_FOUND")

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals /etc/passwd")

    @router.get("/db")
    async def db(session: SessionDep) -> dict[str, int]:
        return {"one": int(await session.scalar(text("SELECT 1")) or 0)}

    @router.get("/open")
    async def open_() -> dict[str, bool]:
        return {"ok": True}

    return router


def demo_app(make_settings: Any, **overrides: Any) -> Any:
    demo = plugin("demo", register_routers=lambda kernel: [demo_router()])
    from tests.everything_skill import Everything

    settings = make_settings(skills_enabled=["demo", "everything"], **overrides)
    return create_app(settings, extra_plugins=[demo, Everything()])


@pytest.fixture
def demo(make_settings: Any, migrated_database: str) -> Any:
    with (
        LiveServer(demo_app(make_settings)) as server,
        httpx.Client(base_url=server.url, timeout=30) as http,
    ):
        yield http


def test_problem_bodies_for_every_error_path(demo: httpx.Client) -> None:
    r = demo.get("/api/v1/demo/missing")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["code"] == "THING_NOT_FOUND" and body["detail"] == "No such thing."
    assert body["type"] == "urn:soundhive:problem:thing-not-found"
    assert body["request_id"] == r.headers["x-request-id"]

    r = demo.post("/api/v1/demo/items", json={"name": 1}, headers={"X-Everything-User": "u"})
    assert r.status_code == 422
    body = r.json()
    assert body["code"] == "VALIDATION_FAILED"
    assert {tuple(e["loc"]) for e in body["errors"]} == {("body", "name"), ("body", "size")}

    r = demo.post("/api/v1/demo/items", json={"name": "a", "size": 1})
    assert r.status_code == 401 and r.json()["code"] == "UNAUTHORIZED"
    assert r.headers["www-authenticate"].startswith("Bearer")

    r = demo.get("/api/v1/demo/boom")
    assert r.status_code == 500
    assert r.json()["code"] == "INTERNAL_ERROR" and "passwd" not in r.text
    assert r.headers["x-request-id"]

    r = demo.delete("/api/v1/demo/open")
    assert r.status_code == 405 and r.json()["code"] == "METHOD_NOT_ALLOWED"


def test_request_id_is_generated_or_echoed(demo: httpx.Client) -> None:
    generated = demo.get("/api/v1/demo/open").headers["x-request-id"]
    assert len(generated) == 32
    assert (
        demo.get("/api/v1/demo/open", headers={"X-Request-ID": "req-1"}).headers["x-request-id"]
        == "req-1"
    )
    unsafe = demo.get("/api/v1/demo/open", headers={"X-Request-ID": 'a b"<>'}).headers[
        "x-request-id"
    ]
    assert unsafe != 'a b"<>'


def test_cors_allows_listed_origins_only(demo: httpx.Client) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization",
    }
    ok = demo.options(
        "/api/v1/demo/items", headers={"Origin": "http://localhost:5173", **preflight}
    )
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == "http://localhost:5173"
    bad = demo.options(
        "/api/v1/demo/items", headers={"Origin": "https://evil.example", **preflight}
    )
    assert "access-control-allow-origin" not in bad.headers
    # simple requests: the listed origin is mirrored; without Origin (servers, apps) there is
    # nothing to allow, but shared caches must still key on Origin
    listed = demo.get("/api/v1/demo/open", headers={"Origin": "http://localhost:5173"})
    assert listed.headers["access-control-allow-origin"] == "http://localhost:5173"
    assert listed.headers["access-control-allow-credentials"] == "true"
    assert (
        "Origin" in listed.headers["vary"]
        and "x-request-id" in listed.headers["access-control-expose-headers"].lower()
    )
    plain = demo.get("/api/v1/demo/open")
    assert "access-control-allow-origin" not in plain.headers
    assert plain.headers.get_list("vary") == ["Origin"]
    evil = demo.get("/api/v1/demo/open", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in evil.headers and "Origin" in evil.headers["vary"]


def test_rate_limit_headers_and_429(make_settings: Any, migrated_database: str) -> None:
    app = demo_app(make_settings, rate_limit="3/minute")
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        headers = {"Authorization": "Bearer token-for-rate-limit-test"}
        first = http.get("/api/v1/demo/open", headers=headers)
        assert first.headers["ratelimit-limit"] == "3"
        assert first.headers["ratelimit-remaining"] == "2"
        assert first.headers["ratelimit-policy"] == "3;w=60"
        http.get("/api/v1/demo/open", headers=headers)
        http.get("/api/v1/demo/open", headers=headers)
        limited = http.get("/api/v1/demo/open", headers=headers)
        assert limited.status_code == 429 and limited.json()["code"] == "RATE_LIMITED"
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        # another principal has its own budget; health endpoints are never limited
        assert (
            http.get("/api/v1/demo/open", headers={"Authorization": "Bearer other"}).status_code
            == 200
        )
        assert http.get("/healthz").status_code == 200


def test_rate_limit_fails_open_and_db_answers_without_redis(
    make_settings: Any, migrated_database: str
) -> None:
    app = demo_app(make_settings, rate_limit="1/minute", redis_url=DOWN_REDIS)
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        for _ in range(3):
            r = http.get("/api/v1/demo/db")
            assert r.status_code == 200 and r.json() == {"one": 1}
            assert "ratelimit-limit" not in r.headers
        ready = http.get("/readyz").json()
        assert ready["status"] == "ready" and ready["checks"]["redis"]["ok"] is False


def test_database_down_gives_503_problem(make_settings: Any) -> None:
    app = demo_app(make_settings, database_url="postgresql://postgres@127.0.0.1:1/none")
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        r = http.get("/api/v1/demo/db")
        assert r.status_code == 503 and r.json()["code"] == "SERVICE_UNAVAILABLE"
        assert r.headers["retry-after"] == "5"
        ready = http.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["database"]["ok"] is False


def test_concurrency_limit_sheds_load(make_settings: Any, migrated_database: str) -> None:
    import threading

    from fastapi import APIRouter

    gate = threading.Event()
    router = APIRouter()

    @router.get("/slow")
    def slow() -> dict[str, bool]:
        gate.wait(5)
        return {"ok": True}

    slow_skill = plugin("slow", register_routers=lambda kernel: [router])
    app = create_app(
        make_settings(skills_enabled=["slow"], concurrency_limit=1), extra_plugins=[slow_skill]
    )
    with LiveServer(app) as server:
        results: list[int] = []
        t = threading.Thread(
            target=lambda: results.append(httpx.get(server.url + "/api/v1/slow").status_code)
        )
        t.start()
        import time

        time.sleep(0.3)
        shed = httpx.get(server.url + "/api/v1/slow")
        gate.set()
        t.join()
        assert shed.status_code == 503 and shed.json()["title"] == "Server busy"
        assert results == [200]


def test_access_log_has_no_tokens_or_query_strings(
    make_settings: Any, migrated_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    app = demo_app(make_settings, log_level="INFO", log_json=True)
    with LiveServer(app) as server:
        httpx.get(
            server.url + "/api/v1/demo/open?X-Amz-Signature=topsecret&token=abc",
            headers={"Authorization": "Bearer supersecrettoken"},
        )
    text_logged = capsys.readouterr().err
    lines = [json.loads(line) for line in text_logged.splitlines() if '"request"' in line]
    assert lines and lines[-1]["path"] == "/api/v1/demo/open" and lines[-1]["status"] == 200
    assert "topsecret" not in text_logged and "supersecrettoken" not in text_logged


def test_metrics_endpoint_reports_routes(demo: httpx.Client) -> None:
    demo.get("/api/v1/demo/open")
    body = demo.get("/metrics").text
    assert (
        'soundhive_http_requests_total{method="GET",route="/api/v1/demo/open",status="200"}' in body
    )
    assert "soundhive_db_query_duration_seconds" in body
    assert "soundhive_cache_requests_total" in body


def test_settings_parse_lists_and_refuse_unsafe_prod(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv("SOUNDHIVE_CORS_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("SOUNDHIVE_SKILLS_DISABLED", "x,y")
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.cors_origins == ["https://a.example", "https://b.example"]
    assert s.skills_disabled == ["x", "y"]
    good_prod = dict(
        env="prod",
        database_url="postgresql://db/x",
        redis_url="redis://r",
        cors_origins="https://app.example",
        auth_jwks_url="https://auth/jwks.json",
        auth_issuer="https://auth",
        auth_audience="soundhive",
        secret_key="x" * 40,
    )
    Settings(_env_file=None, **good_prod)  # type: ignore[call-arg]
    for override, message in [
        ({"cors_origins": "*"}, "wildcard CORS"),
        ({"auth_issuer": None}, "ISSUER and SOUNDHIVE_AUTH_AUDIENCE are required"),
        ({"embedded": True}, "embedded services"),
        ({"database_url": None}, "embedded services"),
        ({"auth_jwks_url": None}, "AUTH_JWKS_URL"),
        ({"secret_key": "short"}, "SECRET_KEY"),
    ]:
        with pytest.raises(ValueError, match=message):
            Settings(_env_file=None, **{**good_prod, **override})  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="asymmetric"):
        Settings(_env_file=None, auth_algorithms="HS256")  # type: ignore[call-arg]
    config = tmp_path / "soundhive.toml"
    config.write_text('skills_disabled = ["from-file"]\nrate_limit = "10/second"\n')
    monkeypatch.delenv("SOUNDHIVE_SKILLS_DISABLED")
    monkeypatch.setenv("SOUNDHIVE_CONFIG_FILE", str(config))
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.skills_disabled == ["from-file"] and s.rate_limit == "10/second"


def test_dotenv_file_is_read(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("SOUNDHIVE_RATE_LIMIT=7/minute\n")
    monkeypatch.chdir(tmp_path)
    assert Settings().rate_limit == "7/minute"


def test_parse_rate() -> None:
    assert parse_rate("60/minute") == (60, 60)
    assert parse_rate("300/5minutes") == (300, 300)
    assert parse_rate("30/30minute") == (30, 1800)
    for bad in ("lots", "0/minute", "5/fortnight"):
        with pytest.raises(ValueError):
            parse_rate(bad)


def test_kernel_without_database_url_explains(make_settings: Any) -> None:
    kernel = Kernel(make_settings(database_url=None, skills_enabled=[]))
    with pytest.raises(Exception, match="SOUNDHIVE_DATABASE_URL"):
        _ = kernel.db


def test_open_event_streams_do_not_hold_concurrency_slots(
    make_settings: Any, migrated_database: str
) -> None:
    import asyncio
    import threading

    from fastapi import APIRouter
    from sse_starlette import EventSourceResponse

    router = APIRouter()

    @router.get("/events")
    async def events() -> EventSourceResponse:
        async def forever() -> Any:
            while True:
                yield {"data": "tick"}
                await asyncio.sleep(0.2)

        return EventSourceResponse(forever())

    @router.get("/plain")
    async def plain() -> dict[str, bool]:
        return {"ok": True}

    skill = plugin("streamy", register_routers=lambda kernel: [router])
    settings = make_settings(skills_enabled=["streamy"], concurrency_limit=1)
    with LiveServer(create_app(settings, extra_plugins=[skill])) as server:
        got_tick = threading.Event()
        stop = threading.Event()

        def listen() -> None:
            with httpx.stream("GET", server.url + "/api/v1/events", timeout=10) as stream:
                for line in stream.iter_lines():
                    if line.startswith("data:"):
                        got_tick.set()
                    if stop.is_set():
                        return

        thread = threading.Thread(target=listen, daemon=True)
        thread.start()
        assert got_tick.wait(5)
        r = httpx.get(server.url + "/api/v1/plain", timeout=10)
        stop.set()
        thread.join(5)
        assert r.status_code == 200 and r.json() == {"ok": True}
