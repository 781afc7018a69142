"""deploy/nginx for real: Debian's nginx runs the repository's template (loopback ports, a
self-signed certificate) in front of a real ``soundhive serve``, and we check what clients and
the API see through it: proxying, request ids, the real client IP (rate limits), body limits,
unbuffered server-sent events, security headers and nginx's own problem+json errors."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.embedded import free_port
from core.errors import problem_type
from core.testing.plugin import wait_for
from tests.music_helpers import sql, wav_bytes
from tests.ops_support import Nginx, nginx_binary, serve

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        nginx_binary() is None, reason="nginx is not installed (.ci/run installs it)"
    ),
]

MAX_UPLOAD = 2 * 1024 * 1024  # SOUNDHIVE_MAX_UPLOAD_BYTES for both the API and nginx here
RATE = 20  # SOUNDHIVE_RATE_LIMIT per minute, small enough to exhaust
HEX32 = re.compile(r"^[0-9a-f]{32}$")


@pytest.fixture(scope="module")
def api_url(
    soundhive_env: dict[str, str], migrated_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """`soundhive serve` trusting X-Forwarded-For from 127.0.0.1 (nginx) only."""
    import os

    tmp = tmp_path_factory.mktemp("nginx-api")
    env = {
        **os.environ,
        **soundhive_env,
        "SOUNDHIVE_DATA_DIR": str(tmp / "data"),
        "SOUNDHIVE_RATE_LIMIT": f"{RATE}/minute",
        "SOUNDHIVE_MAX_UPLOAD_BYTES": str(MAX_UPLOAD),
    }
    with serve(env, tmp, "--forwarded-allow-ips", "127.0.0.1") as url:
        yield url


@pytest.fixture(scope="module")
def proxy(api_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    nginx = Nginx(
        tmp_path_factory.mktemp("nginx"),
        api_url.removeprefix("http://"),
        max_upload_bytes=MAX_UPLOAD,
    )
    checked = nginx.check()
    assert checked.returncode == 0, checked.stderr
    nginx.start()
    try:
        yield nginx
    finally:
        nginx.stop()


@pytest.fixture
def web(proxy: Nginx, clean_state: None) -> Iterator[httpx.Client]:
    with proxy.client() as client:
        yield client


def mint(jwks_server: Any, sub: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {jwks_server.mint(sub)}"}


def mark_ready(services: Any, track_id: str) -> None:
    """Processing has its own tests: flip the row and drop the cached copy."""
    import redis

    sql(services, "UPDATE tracks SET status = 'ready', duration_ms = 1000 WHERE id = %s", track_id)
    redis.Redis.from_url(services.redis_url).delete(f"sh:track:{track_id}")


def assert_security_headers(response: httpx.Response, *, tls: bool = True) -> None:
    headers = response.headers
    assert headers["server"] == "nginx", "server_tokens off: no version"
    assert headers.get_list("x-content-type-options") == ["nosniff"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert len(headers.get_list("content-security-policy")) == 1
    if tls:
        assert headers["strict-transport-security"].startswith("max-age=63072000")
    else:
        assert "strict-transport-security" not in headers


def upload_through(
    web: httpx.Client, proxy: Nginx, auth: dict[str, str], data: bytes
) -> dict[str, Any]:
    """The three upload steps, every one through nginx; returns the finalized track."""
    r = web.post(
        "/api/v1/tracks/upload/initiate",
        json={"filename": "a.wav", "content_type": "audio/wav", "file_size": len(data)},
        headers=auth,
    )
    assert r.status_code == 201, r.text
    ticket = r.json()
    # the API built the URL from the proxied request: https, nginx's host and port
    assert ticket["upload_url"].startswith(f"{proxy.url}/storage/"), ticket["upload_url"]
    put = web.request(
        ticket["method"], ticket["upload_url"], content=data, headers=ticket["headers"]
    )
    assert put.status_code == 201, put.text
    r = web.post(
        "/api/v1/tracks/upload/finalize",
        json={"upload_id": ticket["upload_id"], "title": "Through the proxy"},
        headers=auth,
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_proxies_and_correlates_request_ids(web: httpx.Client, proxy: Nginx) -> None:
    r = web.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    made = r.headers["x-request-id"]
    assert HEX32.match(made), made  # nginx's $request_id, passed to and echoed by the API
    assert r.headers.get_list("x-request-id") == [made]

    kept = web.get("/healthz", headers={"X-Request-ID": "client-abc.123"})
    assert kept.headers["x-request-id"] == "client-abc.123"
    unsafe = web.get("/healthz", headers={"X-Request-ID": "bad id <script>"})
    assert HEX32.match(unsafe.headers["x-request-id"])

    logged = {line["request_id"]: line for line in proxy.log_lines()}
    for rid in (made, "client-abc.123", unsafe.headers["x-request-id"]):
        assert logged[rid]["path"] == "/healthz" and logged[rid]["status"] == 200
        assert logged[rid]["client"] == "127.0.0.1"


def test_security_headers_on_api_storage_and_nginx_responses(
    web: httpx.Client, proxy: Nginx, soundhive_services: Any, jwks_server: Any
) -> None:
    ok = web.get("/healthz")
    assert_security_headers(ok)
    assert ok.headers["content-security-policy"] == "frame-ancestors 'none'"

    missing = web.get(f"/api/v1/tracks/{uuid.uuid4()}")  # the API's own problem
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert_security_headers(missing)

    hidden = web.get("/metrics")  # Prometheus scrapes the API directly, never via nginx
    assert hidden.status_code == 404 and hidden.json()["code"] == "NOT_FOUND"
    assert hidden.json()["type"] == problem_type("NOT_FOUND")
    assert hidden.json()["request_id"] == hidden.headers["x-request-id"]
    assert_security_headers(hidden)
    assert web.get("/readyz").status_code == 200  # loopback is a private network

    # user content keeps the API's stricter CSP (sandbox) and a single nosniff
    me = mint(jwks_server, "header-checker")
    track = upload_through(web, proxy, me, wav_bytes(seconds=1))
    mark_ready(soundhive_services, track["id"])
    detail = web.get(f"/api/v1/tracks/{track['id']}", headers=me).json()
    assert detail["stream_url"].startswith(f"{proxy.url}/storage/")
    audio = web.get(detail["stream_url"], headers={"Range": "bytes=0-99"})
    assert audio.status_code == 206 and len(audio.content) == 100
    assert_security_headers(audio)
    assert "sandbox" in audio.headers["content-security-policy"]

    with httpx.Client(base_url=f"http://127.0.0.1:{proxy.http_port}") as plain:
        moved = plain.get("/api/v1/users/me?x=1")
        assert moved.status_code == 308
        assert moved.headers["location"] == "https://127.0.0.1/api/v1/users/me?x=1"
        health = plain.get("/healthz")
        assert health.status_code == 200 and health.headers["server"] == "nginx"
        assert "strict-transport-security" not in health.headers


def _fresh_window() -> None:
    """The limiter's windows are fixed minutes: do not straddle a boundary."""
    if time.time() % 60 > 50:
        time.sleep(61 - time.time() % 60)


def test_rate_limit_keys_on_the_real_client_not_on_nginx(proxy: Nginx, clean_state: None) -> None:
    _fresh_window()
    probe = "/api/v1/ops-rate-probe"  # counted before routing (404 after)
    with proxy.client("127.0.0.2") as first, proxy.client("127.0.0.3") as second:
        answers = [first.get(probe) for _ in range(RATE)]
        assert [a.status_code for a in answers] == [404] * RATE
        assert answers[-1].headers["ratelimit-remaining"] == "0"
        refused = first.get(probe)
        assert refused.status_code == 429 and refused.json()["code"] == "RATE_LIMITED"
        assert int(refused.headers["retry-after"]) >= 1
        # a forged X-Forwarded-For does not buy a new budget: nginx appends the real address
        forged = first.get(probe, headers={"X-Forwarded-For": "127.0.0.9"})
        assert forged.status_code == 429
        # another machine has its own budget, untouched
        other = second.get(probe)
        assert other.status_code == 404
        assert other.headers["ratelimit-remaining"] == str(RATE - 1)
    # behind a trusted load balancer (NGINX_TRUSTED_PROXIES), its X-Forwarded-For is the client
    with proxy.client() as balancer:
        a = balancer.get(probe, headers={"X-Forwarded-For": "198.51.100.7"})
        b = balancer.get(probe, headers={"X-Forwarded-For": "198.51.100.8"})
        assert a.headers["ratelimit-remaining"] == b.headers["ratelimit-remaining"] == str(RATE - 1)
    expected = {"127.0.0.2", "127.0.0.3", "198.51.100.7", "198.51.100.8"}
    # the access line is written once the response has gone out: the last one may lag a little
    wait_for(
        lambda: expected <= {line["client"] for line in proxy.log_lines() if line["path"] == probe}
    )


def test_body_limits_match_the_upload_limit(
    web: httpx.Client, proxy: Nginx, jwks_server: Any
) -> None:
    me = mint(jwks_server, "big-uploader")
    data = wav_bytes(seconds=8)  # ~1.4 MB: over the 1 MiB JSON limit, under the upload limit
    assert 1024 * 1024 < len(data) < MAX_UPLOAD
    track = upload_through(web, proxy, me, data)
    assert track["status"] == "processing"

    too_big = web.put(
        "/storage/uploads/x/too-big.wav?expires=1&ct=audio%2Fwav&len=1&sig=secret-signature",
        content=b"\0" * (MAX_UPLOAD + 1),
        headers={"Content-Type": "audio/wav"},
    )
    assert too_big.status_code == 413
    assert too_big.headers["content-type"] == "application/problem+json"
    problem = too_big.json()
    assert problem["code"] == "PAYLOAD_TOO_LARGE" and problem["status"] == 413
    assert problem["type"] == problem_type("PAYLOAD_TOO_LARGE")  # the API's own type for it
    assert problem["request_id"] == too_big.headers["x-request-id"]
    assert_security_headers(too_big)

    json_bomb = web.post(
        "/api/v1/tracks/upload/initiate",
        content=b'{"filename": "' + b"a" * (1024 * 1024 + 10) + b'"}',
        headers={**me, "Content-Type": "application/json"},
    )
    assert json_bomb.status_code == 413 and json_bomb.json()["code"] == "PAYLOAD_TOO_LARGE"

    lines = proxy.log_lines()
    assert any(line["status"] == 413 and line["path"].startswith("/storage/") for line in lines)
    raw = proxy.access_log.read_text()
    assert "sig=" not in raw and "secret-signature" not in raw  # no query strings in the log


def test_server_sent_events_arrive_unbuffered(
    web: httpx.Client, proxy: Nginx, soundhive_services: Any, jwks_server: Any
) -> None:
    me = mint(jwks_server, "listener")
    track = upload_through(web, proxy, me, wav_bytes(seconds=1))  # no worker: stays processing
    events: list[tuple[float, dict[str, Any]]] = []
    finished: list[float] = []

    def finish_later() -> None:
        time.sleep(2.0)
        finished.append(time.monotonic())
        sql(soundhive_services, "UPDATE tracks SET status = 'ready' WHERE id = %s", track["id"])

    with web.stream("GET", f"/api/v1/tracks/{track['id']}/events", headers=me) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert "content-encoding" not in stream.headers
        threading.Thread(target=finish_later, daemon=True).start()
        for line in stream.iter_lines():
            if line.startswith("data:"):
                events.append((time.monotonic(), json.loads(line[5:])))
    assert events[0][1]["status"] == "processing"
    assert events[-1][1]["status"] == "ready"
    # the first event reached the client while the stream was open, before anything could end
    # it; a buffering proxy would have held it until the end
    assert events[0][0] < finished[0] <= events[-1][0], (events, finished)


def test_api_down_is_a_problem_503(tmp_path: Path) -> None:
    nginx = Nginx(tmp_path, f"127.0.0.1:{free_port()}", max_upload_bytes=MAX_UPLOAD).start()
    try:
        with nginx.client() as client:
            r = client.get("/api/v1/users/me")
        assert r.status_code == 503
        assert r.headers["content-type"] == "application/problem+json"
        body = r.json()
        assert body["code"] == "SERVICE_UNAVAILABLE" and body["status"] == 503
        assert body["type"] == problem_type("SERVICE_UNAVAILABLE")
        assert body["request_id"] == r.headers["x-request-id"]
        assert r.headers["retry-after"] == "5"
        assert_security_headers(r)
    finally:
        nginx.stop()
