"""Audio made on the fly and the three upload steps, shared by the music tests."""

from __future__ import annotations

import io
from typing import Any

import httpx
import numpy as np
import soundfile as sf


def click_track(bpm: float = 120.0, seconds: float = 6.0, sample_rate: int = 44100) -> np.ndarray:
    """Decaying 1 kHz bursts on every beat, stereo float32."""
    frames = int(seconds * sample_rate)
    t = np.arange(frames) / sample_rate
    signal = 0.05 * np.sin(2 * np.pi * 220 * t)
    burst = int(0.03 * sample_rate)
    envelope = np.exp(-np.linspace(0, 8, burst))
    tone = 0.8 * np.sin(2 * np.pi * 1000 * np.arange(burst) / sample_rate) * envelope
    step = 60.0 / bpm
    beat = 0.0
    while beat < seconds:
        start = int(beat * sample_rate)
        end = min(frames, start + burst)
        signal[start:end] += tone[: end - start]
        beat += step
    return np.stack([signal, signal], axis=1).astype(np.float32)


def encode(audio: np.ndarray, fmt: str, sample_rate: int = 44100) -> bytes:
    """WAV, FLAC, OGG or MP3 bytes of ``audio``."""
    buffer = io.BytesIO()
    subtype = {"WAV": "PCM_16", "FLAC": "PCM_16", "OGG": "VORBIS", "MP3": "MPEG_LAYER_III"}[fmt]
    sf.write(buffer, audio, sample_rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def wav_bytes(bpm: float = 120.0, seconds: float = 6.0) -> bytes:
    return encode(click_track(bpm, seconds), "WAV")


def mp3_bytes(bpm: float = 120.0, seconds: float = 6.0) -> bytes:
    return encode(click_track(bpm, seconds), "MP3")


def initiate(
    api: httpx.Client,
    headers: dict[str, str],
    data: bytes,
    content_type: str,
    filename: str = "a.mp3",
) -> httpx.Response:
    return api.post(
        "/api/v1/tracks/upload/initiate",
        json={"filename": filename, "content_type": content_type, "file_size": len(data)},
        headers=headers,
    )


def put_bytes(ticket: dict[str, Any], data: bytes) -> httpx.Response:
    return httpx.request(
        ticket["method"], ticket["upload_url"], content=data, headers=ticket["headers"], timeout=30
    )


def upload(
    api: httpx.Client,
    headers: dict[str, str],
    data: bytes,
    *,
    content_type: str = "audio/mpeg",
    **fields: Any,
) -> httpx.Response:
    """All three steps; returns the finalize response."""
    fields.setdefault("title", "Night walk")
    ticket = initiate(api, headers, data, content_type)
    assert ticket.status_code == 201, ticket.text
    put = put_bytes(ticket.json(), data)
    assert put.status_code in (200, 201, 204), put.text
    return api.post(
        "/api/v1/tracks/upload/finalize",
        json={"upload_id": ticket.json()["upload_id"], **fields},
        headers=headers,
    )


def sql(services: Any, statement: str, *params: Any) -> list[tuple[Any, ...]]:
    """Run SQL on the test database (autocommit); returns rows when there are any."""
    import psycopg

    from core.testing.services import plain_url

    with psycopg.connect(plain_url(services.database_url), autocommit=True) as conn:
        cursor = conn.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def ready_track(
    api: httpx.Client, services: Any, headers: dict[str, str], **fields: Any
) -> dict[str, Any]:
    """A finalized track marked ready directly (processing has its own tests): fast fixtures
    for skills that need tracks. ``fields`` go to finalize (title, tags, mood, visibility …)."""
    import redis

    fields.setdefault("title", "Night walk")
    r = upload(api, headers, wav_bytes(seconds=1), content_type="audio/wav", **fields)
    assert r.status_code == 201, r.text
    track_id = r.json()["id"]
    sql(
        services,
        "UPDATE tracks SET status = 'ready', duration_ms = 180000, ready_at = now() WHERE id = %s",
        track_id,
    )
    redis.Redis.from_url(services.redis_url).delete(f"sh:track:{track_id}")
    return dict(api.get(f"/api/v1/tracks/{track_id}", headers=headers).json())
