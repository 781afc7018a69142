"""The upload flow end to end on the ``s3`` backend (moto's real HTTP S3): the API only signs,
the client PUTs straight to S3, a real worker processes from S3, and the stream URL is S3's."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from core.app import create_app
from core.testing.live import LiveServer
from core.testing.plugin import Api, wait_for
from tests.music_helpers import mp3_bytes, upload

BUCKET = "soundhive-e2e"


@pytest.fixture
def s3_env(moto_url: str) -> dict[str, str]:
    return {
        "SOUNDHIVE_STORAGE": "s3",
        "SOUNDHIVE_S3_ENDPOINT_URL": moto_url,
        "SOUNDHIVE_S3_BUCKET": BUCKET,
        "SOUNDHIVE_S3_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


@pytest.fixture
def s3_api(
    make_settings: Any,
    migrated_database: str,
    clean_state: None,
    jwks_server: Any,
    s3_env: dict[str, str],
) -> Iterator[Api]:
    settings = make_settings(
        storage="s3",
        s3_endpoint_url=s3_env["SOUNDHIVE_S3_ENDPOINT_URL"],
        s3_bucket=BUCKET,
        s3_region="us-east-1",
    )
    with LiveServer(create_app(settings)) as server, Api(server.url, jwks_server) as client:
        yield client


@pytest.fixture
def s3_worker(
    soundhive_env: dict[str, str], s3_env: dict[str, str]
) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, **soundhive_env, **s3_env}
    proc = subprocess.Popen([sys.executable, "-m", "core.cli", "worker", "--threads", "2"], env=env)
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_s3_upload_process_and_stream(s3_api: Api, s3_worker: Any, moto_url: str) -> None:
    me = s3_api.auth("s3-artist")
    data = mp3_bytes(bpm=90, seconds=6)
    ticket = s3_api.post(
        "/api/v1/tracks/upload/initiate",
        json={"filename": "x.mp3", "content_type": "audio/mpeg", "file_size": len(data)},
        headers=me,
    ).json()
    assert ticket["upload_url"].startswith(moto_url)  # the bytes never go through the API
    r = upload(s3_api, me, data, title="S3 song")
    assert r.status_code == 201, r.text
    track_id = r.json()["id"]
    done = wait_for(
        lambda: (
            (b := s3_api.get(f"/api/v1/tracks/{track_id}", headers=me).json())["status"]
            != "processing"
            and b
        ),
        timeout=60,
        interval=0.2,
    )
    assert done["status"] == "ready", done
    assert abs(done["bpm"] - 90) <= 2 and 5900 <= done["duration_ms"] <= 6200
    assert done["stream_url"].startswith(moto_url)
    assert httpx.get(done["stream_url"]).content == data
    ranged = httpx.get(done["stream_url"], headers={"Range": "bytes=0-99"})
    assert ranged.status_code == 206 and ranged.content == data[:100]


def test_s3_refuses_text_and_deletes_it(s3_api: Api) -> None:
    me = s3_api.auth("s3-trick")
    r = upload(s3_api, me, b"plain text, not audio " * 40, content_type="audio/mpeg")
    assert r.status_code == 415 and r.json()["code"] == "UNSUPPORTED_MEDIA_TYPE"


def test_s3_outage_is_a_503_not_a_500(
    make_settings: Any, migrated_database: str, jwks_server: Any
) -> None:
    settings = make_settings(
        storage="s3", s3_endpoint_url="http://127.0.0.1:1", s3_bucket=BUCKET, s3_region="us-east-1"
    )
    with LiveServer(create_app(settings)) as server, Api(server.url, jwks_server) as client:
        r = client.post(
            "/api/v1/tracks/upload/initiate",
            json={"filename": "x.mp3", "content_type": "audio/mpeg", "file_size": 1000},
            headers=client.auth("s3-down"),
        )
        # presigning is local computation; the outage shows when finalize reaches S3
        assert r.status_code == 201
        fin = client.post(
            "/api/v1/tracks/upload/finalize",
            json={"upload_id": r.json()["upload_id"], "title": "t"},
            headers=client.auth("s3-down"),
        )
        assert fin.status_code == 503 and fin.json()["code"] == "SERVICE_UNAVAILABLE"
