"""The three-step upload over real HTTP (local storage signed URLs), processing on a real
Dramatiq worker, and every bad input refused with nothing left behind."""

from __future__ import annotations

import concurrent.futures
import json
import time
from typing import Any

import httpx
import psycopg
import pytest

from core.testing.plugin import wait_for
from core.testing.services import plain_url
from tests.music_helpers import initiate, mp3_bytes, put_bytes, upload, wav_bytes


def rows(services: Any, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(plain_url(services.database_url)) as conn:
        return conn.execute(sql, params).fetchall()


def test_upload_process_stream_end_to_end(api, real_worker, soundhive_services) -> None:
    me = api.auth("uploader")
    data = mp3_bytes(bpm=120, seconds=8)
    r = upload(api, me, data, title="잔잔한 밤 산책", tags=["LoFi ", "night"], mood="calm")
    assert r.status_code == 201, r.text
    track = r.json()
    assert track["status"] == "processing" and track["title"] == "잔잔한 밤 산책"
    assert track["tags"] == ["lofi", "night"] and track["mood"] == "calm"
    assert track["stream_url"] is None

    def ready() -> dict[str, Any] | None:
        body = api.get(f"/api/v1/tracks/{track['id']}", headers=me).json()
        return body if body["status"] != "processing" else None

    done = wait_for(ready, timeout=60, interval=0.2)
    assert done["status"] == "ready", done
    assert 7900 <= done["duration_ms"] <= 8200
    assert done["sample_rate"] == 44100 and done["channels"] == 2
    assert done["bitrate"] > 0 and abs(done["bpm"] - 120) <= 2
    assert -40 < done["loudness_lufs"] < 0
    waveform = done["waveform"]
    assert waveform["samples_per_pixel"] > 0 and 1500 <= len(waveform["data"]) <= 1802
    assert all(-128 <= v <= 127 for v in waveform["data"])
    audio = httpx.get(done["stream_url"])
    assert audio.status_code == 200 and audio.content == data
    ranged = httpx.get(done["stream_url"], headers={"Range": "bytes=100-199"})
    assert ranged.status_code == 206 and ranged.content == data[100:200]
    redirect = api.get(f"/api/v1/tracks/{track['id']}/stream", headers=me, follow_redirects=False)
    assert (
        redirect.status_code == 302
        and redirect.headers["location"].split("?")[0] == done["stream_url"].split("?")[0]
    )
    profile = api.get("/api/v1/users/me", headers=me).json()
    assert profile["tracks_count"] == 1
    events = rows(soundhive_services, "SELECT type FROM core_outbox ORDER BY occurred_at")
    assert [e[0] for e in events if e[0].startswith("track.")] == [
        "track.uploaded",
        "track.created",
    ]


def test_finalize_is_idempotent_under_concurrency(api, soundhive_services) -> None:
    me = api.auth("racer")
    data = wav_bytes(seconds=1)
    ticket = initiate(api, me, data, "audio/wav").json()
    assert put_bytes(ticket, data).status_code in (200, 201, 204)
    body = {"upload_id": ticket["upload_id"], "title": "Race"}

    def finalize() -> httpx.Response:
        with httpx.Client(base_url=str(api.base_url), timeout=30) as client:
            return client.post("/api/v1/tracks/upload/finalize", json=body, headers=me)

    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(lambda _: finalize(), range(20)))
    assert sorted(r.status_code for r in results) == [200] * 19 + [201]
    assert len({r.json()["id"] for r in results}) == 1
    assert rows(soundhive_services, "SELECT count(*) FROM tracks")[0][0] == 1
    assert api.get("/api/v1/users/me", headers=me).json()["tracks_count"] == 1


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (
            {"filename": "a.txt", "content_type": "text/plain", "file_size": 10},
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            {"filename": "a.mp3", "content_type": "audio/mpeg", "file_size": 200 * 1024 * 1024},
            413,
            "PAYLOAD_TOO_LARGE",
        ),
        (
            {"filename": "a.mp3", "content_type": "audio/mpeg", "file_size": 0},
            422,
            "VALIDATION_FAILED",
        ),
        ({"filename": "a.mp3", "content_type": "audio/mpeg"}, 422, "VALIDATION_FAILED"),
    ],
)
def test_initiate_refuses_bad_declarations(api, soundhive_services, body, status, code) -> None:
    r = api.post("/api/v1/tracks/upload/initiate", json=body, headers=api.auth("u"))
    assert r.status_code == status and r.json()["code"] == code
    assert rows(soundhive_services, "SELECT count(*) FROM upload_sessions")[0][0] == 0


def test_initiate_needs_an_account(api) -> None:
    r = api.post(
        "/api/v1/tracks/upload/initiate",
        json={"filename": "a", "content_type": "audio/mpeg", "file_size": 1},
    )
    assert r.status_code == 401 and r.json()["code"] == "UNAUTHORIZED"


def test_text_renamed_mp3_is_refused_and_removed(
    api, soundhive_services, soundhive_data_dir
) -> None:
    me = api.auth("trickster")
    data = b"this is not audio at all, just text pretending " * 50
    r = upload(api, me, data, content_type="audio/mpeg")
    assert r.status_code == 415 and r.json()["code"] == "UNSUPPORTED_MEDIA_TYPE"
    assert rows(soundhive_services, "SELECT count(*) FROM tracks")[0][0] == 0
    assert rows(soundhive_services, "SELECT state FROM upload_sessions") == [("rejected",)]
    objects = list((soundhive_data_dir / "objects").rglob("*"))
    assert not [
        p for p in objects if p.is_file() and "uploads" in str(p) and not p.name.endswith(".json")
    ]


def test_declared_type_must_match_the_bytes(api) -> None:
    r = upload(api, api.auth("liar"), wav_bytes(seconds=1), content_type="audio/flac")
    assert r.status_code == 415 and "WAV" in r.json()["detail"]


def test_finalize_before_put_then_after(api) -> None:
    me = api.auth("eager")
    data = wav_bytes(seconds=1)
    ticket = initiate(api, me, data, "audio/wav").json()
    early = api.post(
        "/api/v1/tracks/upload/finalize",
        json={"upload_id": ticket["upload_id"], "title": "t"},
        headers=me,
    )
    assert early.status_code == 422 and early.json()["code"] == "FILE_UPLOAD_FAILED"
    assert put_bytes(ticket, data).status_code in (200, 201, 204)
    late = api.post(
        "/api/v1/tracks/upload/finalize",
        json={"upload_id": ticket["upload_id"], "title": "t"},
        headers=me,
    )
    assert late.status_code == 201 and late.json()["status"] == "processing"


def test_someone_elses_upload_is_not_found(api, soundhive_services) -> None:
    data = wav_bytes(seconds=1)
    ticket = initiate(api, api.auth("owner"), data, "audio/wav").json()
    put_bytes(ticket, data)
    r = api.post(
        "/api/v1/tracks/upload/finalize",
        json={"upload_id": ticket["upload_id"], "title": "mine now"},
        headers=api.auth("thief"),
    )
    assert r.status_code == 404 and r.json()["code"] == "UPLOAD_NOT_FOUND"
    assert rows(soundhive_services, "SELECT count(*) FROM tracks")[0][0] == 0


def test_tampered_and_oversized_puts_are_refused(api) -> None:
    me = api.auth("tamper")
    data = wav_bytes(seconds=1)
    ticket = initiate(api, me, data, "audio/wav").json()
    tampered = dict(ticket, upload_url=ticket["upload_url"].replace("sig=", "sig=0"))
    assert put_bytes(tampered, data).status_code == 403
    longer = httpx.put(
        ticket["upload_url"],
        content=data + b"xx",
        headers=ticket["headers"] | {"Content-Length": str(len(data) + 2)},
    )
    assert longer.status_code in (400, 403, 413)
    r = api.post(
        "/api/v1/tracks/upload/finalize",
        json={"upload_id": ticket["upload_id"], "title": "t"},
        headers=me,
    )
    assert r.status_code == 422 and r.json()["code"] == "FILE_UPLOAD_FAILED"


def test_truncated_mp3_ends_ready_or_failed_with_a_reason(api, real_worker) -> None:
    me = api.auth("truncator")
    data = mp3_bytes(seconds=6)
    r = upload(api, me, data[: len(data) // 2])
    assert r.status_code == 201, r.text
    track_id = r.json()["id"]
    done = wait_for(
        lambda: (
            (b := api.get(f"/api/v1/tracks/{track_id}", headers=me).json())["status"]
            != "processing"
            and b
        ),
        timeout=60,
        interval=0.2,
    )
    if done["status"] == "failed":
        assert done["failure_reason"]
    else:
        assert 1000 < done["duration_ms"] < 4000


def test_garbage_after_an_mp3_header_fails_with_a_readable_reason(api, real_worker) -> None:
    me = api.auth("garbage")
    data = mp3_bytes(seconds=2)[:2048] + bytes(range(256)) * 200
    r = upload(api, me, data)
    assert r.status_code == 201, r.text
    track_id = r.json()["id"]
    done = wait_for(
        lambda: (
            (b := api.get(f"/api/v1/tracks/{track_id}", headers=me).json())["status"]
            != "processing"
            and b
        ),
        timeout=60,
        interval=0.2,
    )
    assert done["status"] in ("failed", "ready")
    if done["status"] == "failed":
        assert len(done["failure_reason"]) > 10


def test_progress_events_stream_until_ready(api, real_worker) -> None:
    me = api.auth("watcher")
    r = upload(api, me, mp3_bytes(seconds=20))
    track_id = r.json()["id"]
    statuses: list[dict[str, Any]] = []
    started = time.time()
    with httpx.stream(
        "GET",
        f"{str(api.base_url).rstrip('/')}/api/v1/tracks/{track_id}/events",
        headers=me,
        timeout=60,
    ) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            if line.startswith("data:"):
                statuses.append(json.loads(line[5:]))
    assert time.time() - started < 60
    assert statuses[-1]["status"] == "ready"
    assert all(s["status"] in ("processing", "ready") for s in statuses)
