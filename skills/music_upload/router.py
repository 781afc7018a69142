"""Upload routes (steps 1 and 3) and the processing progress stream."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import anyio
from fastapi import APIRouter, Depends, Request, Response
from sse_starlette import EventSourceResponse, ServerSentEvent

from core.db import SessionDep
from core.ratelimit import enforce
from skills.music_streaming_basic import api as tracks
from skills.music_upload import progress, service
from skills.music_upload.schemas import FinalizeUpload, InitiateUpload, UploadTicket
from skills.user_profile.api import ActiveUser

router = APIRouter(tags=["music-upload"])
TERMINAL = ("ready", "failed")


async def upload_rate_limit(request: Request) -> None:
    """Uploads have their own, stricter budget (``SOUNDHIVE_UPLOAD_RATE_LIMIT``)."""
    await enforce(request, "uploads", service.settings_of(request.app.state.kernel).rate_limit)


@router.post(
    "/tracks/upload/initiate",
    response_model=UploadTicket,
    status_code=201,
    dependencies=[Depends(upload_rate_limit)],
    responses={
        413: {"description": "Larger than the upload limit (PAYLOAD_TOO_LARGE)"},
        415: {"description": "Not an accepted audio type (UNSUPPORTED_MEDIA_TYPE)"},
        429: {"description": "Too many uploads (RATE_LIMITED, TOO_MANY_UPLOADS)"},
    },
)
async def initiate(
    body: InitiateUpload, user: ActiveUser, request: Request, session: SessionDep
) -> UploadTicket:
    """Step 1: returns where to PUT the file, with the headers the PUT must carry."""
    return await service.initiate(request.app.state.kernel, session, user.id, body)


@router.post(
    "/tracks/upload/finalize",
    response_model=tracks.TrackDetail,
    status_code=201,
    responses={
        200: {
            "description": "Already finalized: the same track again",
            "model": tracks.TrackDetail,
        },
        404: {"description": "No such upload for this user (UPLOAD_NOT_FOUND)"},
        410: {"description": "The upload expired (UPLOAD_EXPIRED)"},
        415: {"description": "The bytes are not accepted audio (UNSUPPORTED_MEDIA_TYPE)"},
        422: {"description": "Missing or wrong-sized file (FILE_UPLOAD_FAILED)"},
    },
)
async def finalize(
    body: FinalizeUpload,
    user: ActiveUser,
    request: Request,
    response: Response,
    session: SessionDep,
) -> tracks.TrackRead:
    """Step 3: checks the stored bytes and creates the track (``status: processing``)."""
    kernel = request.app.state.kernel
    track_id, created = await service.finalize(kernel, session, user.id, body)
    if not created:
        response.status_code = 200
    viewer = tracks.Viewer(profile_id=user.id)
    return await tracks.track_detail(kernel, session, track_id, viewer)


@router.get(
    "/tracks/{track_id}/events",
    response_class=EventSourceResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "status/progress events"},
        404: {"description": "No such track, or not visible to the caller (TRACK_NOT_FOUND)"},
    },
)
async def track_events(
    track_id: uuid.UUID, request: Request, session: SessionDep, viewer: tracks.TrackViewer
) -> EventSourceResponse:
    """Server-sent ``status`` events while the track is processed; ends when it is ready or
    failed. Without Redis it falls back to polling the database."""
    kernel = request.app.state.kernel
    data = await tracks.visible_track(kernel, session, track_id, viewer)
    await session.close()
    return EventSourceResponse(_events(kernel, str(track_id), data), ping=15, send_timeout=30)


async def _events(
    kernel: Any, track_id: str, data: dict[str, Any]
) -> AsyncIterator[ServerSentEvent]:
    def event(payload: dict[str, Any]) -> ServerSentEvent:
        return ServerSentEvent(data=json.dumps(payload), event="status")

    pubsub = None
    if kernel.cache.usable:
        try:
            pubsub = kernel.cache.client.pubsub()
            await pubsub.subscribe(progress.channel(kernel, track_id))
        except Exception:
            pubsub = None
    try:
        current = await _status(kernel, track_id) or _public(data)
        latest = (
            await progress.last(kernel, track_id) if current["status"] == "processing" else None
        )
        yield event(latest if latest and latest.get("status") == "processing" else current)
        if current["status"] in TERMINAL:
            return
        while True:
            message = None
            if pubsub is not None:
                try:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                except Exception:
                    pubsub = None
            else:
                await asyncio.sleep(1.0)
            if message is not None:
                payload = json.loads(message["data"])
                yield event(payload)
                if payload.get("status") in TERMINAL:
                    return
                continue
            status = await _status(kernel, track_id)  # cheap safety net for missed messages
            if status is None or status["status"] in TERMINAL:
                if status is not None:
                    yield event(status)
                return
    finally:
        if pubsub is not None:
            # shielded: the stream's task is being cancelled when the client goes away
            with anyio.move_on_after(2, shield=True), contextlib.suppress(Exception):
                await pubsub.aclose()


async def _status(kernel: Any, track_id: str) -> dict[str, Any] | None:
    async with kernel.db.session() as session:
        row = await session.get(tracks.Track, uuid.UUID(track_id))
        if row is None:
            return None
        return {"status": row.status, "failure_reason": row.failure_reason}


def _public(data: dict[str, Any]) -> dict[str, Any]:
    return {"status": data["status"], "failure_reason": data.get("failure_reason")}
