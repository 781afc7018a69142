"""Scale-out for real: two API processes, a two-process Dramatiq worker and the scheduler share
one PostgreSQL, one Redis, one local object store and a RabbitMQ broker. A track uploaded across
both APIs is processed by a worker process and its followers are notified — nothing may depend
on which process a request or a job lands on (docs/scaling.md)."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import httpx
import pytest

from core.embedded import free_port
from core.testing.plugin import wait_for
from tests.music_helpers import wav_bytes
from tests.ops_support import soundhive, wait_http

pytestmark = pytest.mark.integration

AMQP_URL = os.environ.get("SOUNDHIVE_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


def _reachable(url: str) -> str | None:
    """``None`` when an AMQP connection opens, else why not."""
    import pika

    params = pika.URLParameters(url)
    params.socket_timeout = params.blocked_connection_timeout = 3
    params.connection_attempts = 1
    try:
        pika.BlockingConnection(params).close()
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"


def _rabbitmqctl(*args: str) -> bool:
    tool = shutil.which("rabbitmqctl")
    if tool is None:
        return False
    try:
        return subprocess.run([tool, *args], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@pytest.fixture
def amqp_url() -> Iterator[str]:
    """The broker URL, on a vhost of its own when rabbitmqctl may make one (so a concurrent
    run on the same RabbitMQ cannot take these messages)."""
    problem = _reachable(AMQP_URL)
    if problem:
        pytest.skip(f"RabbitMQ is not reachable at {AMQP_URL.split('@')[-1]}: {problem}")
    parts = urlsplit(AMQP_URL)
    vhost = f"soundhive-test-{uuid.uuid4().hex[:8]}"
    user = unquote(parts.username or "guest")
    if _rabbitmqctl("add_vhost", vhost):
        try:
            if _rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*"):
                yield urlunsplit(parts._replace(path="/" + quote(vhost, safe="")))
            else:
                yield AMQP_URL
        finally:
            _rabbitmqctl("delete_vhost", vhost)
    else:
        yield AMQP_URL


def on(base: str, url: str) -> str:
    """The same signed path and query on another API process."""
    parts = urlsplit(url)
    return base + parts.path + ("?" + parts.query if parts.query else "")


def test_upload_ready_notify_across_processes(
    amqp_url: str,
    soundhive_env: dict[str, str],
    soundhive_services: Any,
    migrated_database: str,
    clean_state: None,
    jwks_server: Any,
    tmp_path: Path,
) -> None:
    import redis

    env = {
        **os.environ,
        **soundhive_env,
        "SOUNDHIVE_BROKER_URL": amqp_url,
        "SOUNDHIVE_DATA_DIR": str(tmp_path / "shared-data"),  # one store for every process
        "SOUNDHIVE_WORKER_METRICS_PORT": str(metrics_port := free_port()),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    ports = [free_port(), free_port()]
    procs = [
        soundhive(["serve", "--port", str(port)], env, tmp_path / f"api-{port}.log")
        for port in ports
    ]
    procs.append(
        soundhive(["worker", "--processes", "2", "--threads", "2"], env, tmp_path / "worker.log")
    )
    # relays what workers emit (track.created when processing ends) and runs periodic jobs
    procs.append(soundhive(["scheduler"], env, tmp_path / "scheduler.log"))
    api1, api2 = (f"http://127.0.0.1:{port}" for port in ports)
    try:
        for base, proc in zip((api1, api2), procs, strict=False):
            wait_http(f"{base}/healthz", proc)
        wait_http(f"http://127.0.0.1:{metrics_port}/metrics", procs[2])

        def auth(sub: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {jwks_server.mint(sub)}"}

        artist, fan = auth("artist"), auth("fan")
        artist_id = httpx.get(f"{api1}/api/v1/users/me", headers=artist).json()["id"]
        fan_id = httpx.get(f"{api2}/api/v1/users/me", headers=fan).json()["id"]
        follow = httpx.post(f"{api2}/api/v1/users/{artist_id}/follow", headers=fan)
        assert follow.status_code in (200, 201, 204), follow.text

        data = wav_bytes(seconds=3)
        ticket = httpx.post(
            f"{api1}/api/v1/tracks/upload/initiate",
            json={"filename": "song.wav", "content_type": "audio/wav", "file_size": len(data)},
            headers=artist,
        )
        assert ticket.status_code == 201, ticket.text
        grant = ticket.json()
        assert grant["upload_url"].startswith(api1)  # signed by API 1 …
        put = httpx.put(on(api2, grant["upload_url"]), content=data, headers=grant["headers"])
        assert put.status_code == 201, put.text  # … accepted by API 2: shared secret and store
        created = httpx.post(
            f"{api2}/api/v1/tracks/upload/finalize",
            json={"upload_id": grant["upload_id"], "title": "Two processes"},
            headers=artist,
        )
        assert created.status_code == 201, created.text
        track_id = created.json()["id"]

        def ready() -> Any:
            body = httpx.get(f"{api1}/api/v1/tracks/{track_id}", headers=artist).json()
            return body if body["status"] != "processing" else None

        track = wait_for(ready, timeout=60, interval=0.3)
        assert track["status"] == "ready", track
        assert 2900 <= track["duration_ms"] <= 3100 and track["channels"] == 2
        audio = httpx.get(on(api2, track["stream_url"]))
        assert audio.status_code == 200 and audio.content == data

        def notified(headers: dict[str, str], kind: str) -> Any:
            items = httpx.get(f"{api1}/api/v1/notifications", headers=headers).json()["items"]
            return [n for n in items if n["type"] == kind] or None

        new_track = wait_for(lambda: notified(fan, "new_track"), timeout=30, interval=0.3)
        assert new_track[0]["track_id"] == track_id and new_track[0]["actor_id"] == artist_id
        followed = wait_for(lambda: notified(artist, "follow"), timeout=30, interval=0.3)
        assert followed[0]["actor_id"] == fan_id

        worker_metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
        assert 'soundhive_jobs_total{actor="music-upload.process",outcome="success"} 1.0' in (
            worker_metrics
        )
        pids = {
            line.split('pid="')[1].split('"')[0]
            for line in worker_metrics.splitlines()
            if line.startswith("process_cpu_seconds_total{")
        }
        assert len(pids) == 2, pids  # two worker processes consuming
        # the jobs went through RabbitMQ: nothing was queued in Redis
        assert not redis.Redis.from_url(soundhive_services.redis_url).keys("soundhive-tasks*")
    except AssertionError as exc:
        logs = "\n".join(f"--- {p.log.name}\n{p.output(3000)}" for p in procs)
        raise AssertionError(f"{exc}\n{logs}") from exc
    finally:
        for proc in procs:
            proc.stop()
    assert all(not proc.alive() for proc in procs)
