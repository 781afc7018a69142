"""Periodic jobs of music-upload: expiring unfinished uploads, deleting orphans, reaping
tracks stuck in processing (what a worker killed mid-job leaves behind)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import dramatiq
import psycopg
import pytest
from dramatiq.brokers.stub import StubBroker

from core.kernel import Kernel
from core.testing.services import plain_url
from skills.music_upload.maintenance import cleanup, delete_orphans, reap
from tests.music_helpers import initiate, put_bytes, upload, wav_bytes


def sql(services: Any, statement: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(plain_url(services.database_url), autocommit=True) as conn:
        cursor = conn.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


@pytest.fixture
async def kernel(make_settings: Any, migrated_database: str) -> Any:
    k = Kernel(make_settings())
    broker = StubBroker()
    k.use_broker(broker)
    yield k
    await k.aclose()


async def test_expired_uploads_are_closed_and_their_objects_deleted(
    api, kernel, soundhive_services
) -> None:
    me = api.auth("slowpoke")
    data = wav_bytes(seconds=1)
    ticket = initiate(api, me, data, "audio/wav").json()
    assert put_bytes(ticket, data).status_code in (200, 201, 204)
    key = sql(soundhive_services, "SELECT object_key FROM upload_sessions")[0][0]
    assert await kernel.storage.head(key) is not None
    sql(soundhive_services, "UPDATE upload_sessions SET expires_at = now() - interval '1 minute'")
    result = await cleanup(kernel)
    assert result["expired"] == 1
    assert await kernel.storage.head(key) is None
    assert sql(soundhive_services, "SELECT state FROM upload_sessions") == [("expired",)]
    late = api.post(
        "/api/v1/tracks/upload/finalize",
        json={"upload_id": ticket["upload_id"], "title": "t"},
        headers=me,
    )
    assert late.status_code == 410 and late.json()["code"] == "UPLOAD_EXPIRED"


async def test_orphans_are_deleted_and_referenced_objects_kept(api, kernel) -> None:
    me = api.auth("keeper")
    r = upload(api, me, wav_bytes(seconds=1), content_type="audio/wav")
    assert r.status_code == 201
    await kernel.storage.put_bytes("uploads/nobody/orphan", b"lost bytes", "audio/mpeg")
    await kernel.storage.put_bytes("covers/ghost.jpg", b"\xff\xd8", "image/jpeg")
    deleted = await delete_orphans(kernel, older_than=timedelta(seconds=-60))
    assert deleted == 2
    assert await kernel.storage.head("uploads/nobody/orphan") is None
    listed = [info.key async for info in kernel.storage.iter_objects("uploads/")]
    assert len(listed) == 1  # the finalized track's object stays


async def test_reaper_retries_then_fails_stuck_tracks(api, kernel, soundhive_services) -> None:
    me = api.auth("stuck")
    r = upload(api, me, wav_bytes(seconds=1), content_type="audio/wav")
    track_id = r.json()["id"]
    sql(
        soundhive_services,
        "UPDATE tracks SET updated_at = now() - interval '1 hour', processing_attempts = 1",
    )
    assert await reap(kernel) == {"retried": 1, "failed": 0}
    messages = [dramatiq.Message.decode(m) for m in kernel.broker.queues["processing"].queue]
    assert [(m.actor_name, m.kwargs) for m in messages] == [
        ("music-upload.process", {"track_id": track_id})
    ]
    assert await reap(kernel) == {"retried": 0, "failed": 0}  # the deadline restarted
    sql(
        soundhive_services,
        "UPDATE tracks SET updated_at = now() - interval '1 hour', processing_attempts = 3",
    )
    assert await reap(kernel) == {"retried": 0, "failed": 1}
    body = api.get(f"/api/v1/tracks/{track_id}", headers=me).json()
    assert body["status"] == "failed" and "did not finish in time" in body["failure_reason"]
