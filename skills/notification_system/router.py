"""HTTP endpoints under ``/api/v1/notifications`` (SPEC §5). Everything is the caller's own:
another user's notification is 404, never 403, so ids cannot be probed."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, Query, Request
from sse_starlette import EventSourceResponse
from starlette.background import BackgroundTask

from core.db import SessionDep
from core.errors import RateLimited
from core.kernel import kernel_of
from core.pagination import Cursor, Limit, Page
from skills.notification_system import live, service
from skills.notification_system.schemas import NotificationRead, ReadAll, UnreadCount
from skills.notification_system.stream import notification_events
from skills.user_profile.api import ActiveUser, CurrentUser

router = APIRouter(tags=["notification-system"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "Not one of the caller's notifications (NOTIFICATION_NOT_FOUND)"}
}


@router.get("/notifications", response_model=Page[NotificationRead])
async def list_notifications(
    user: CurrentUser,
    session: SessionDep,
    unread: Annotated[
        bool | None, Query(description="true: unread only; false: read only; omitted: all.")
    ] = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[NotificationRead]:
    """The caller's notifications, newest first, with the actor's profile embedded."""
    items, next_cursor = await service.list_page(
        session, user.id, unread=unread, cursor=cursor, limit=limit
    )
    return Page(items=items, next_cursor=next_cursor)


@router.get("/notifications/unread-count", response_model=UnreadCount)
async def unread_count(user: CurrentUser, session: SessionDep, request: Request) -> UnreadCount:
    """Cached per user; a new or newly read notification refreshes it."""
    count = await service.unread_count(kernel_of(request), session, user.id)
    return UnreadCount(unread_count=count)


@router.post("/notifications/read-all", response_model=ReadAll)
async def read_all(user: ActiveUser, session: SessionDep, request: Request) -> ReadAll:
    """Mark every unread notification of the caller read."""
    return ReadAll(updated=await service.mark_all_read(kernel_of(request), session, user.id))


@router.post(
    "/notifications/{notification_id}/read", response_model=NotificationRead, responses=NOT_FOUND
)
async def read_one(
    notification_id: uuid.UUID, user: ActiveUser, session: SessionDep, request: Request
) -> NotificationRead:
    """Mark one notification read; repeating it answers the same."""
    return await service.mark_read(kernel_of(request), session, user.id, notification_id)


@router.get(
    "/notifications/stream",
    response_class=EventSourceResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "`notification` events (data: a Notification, id: its seq); "
            "comment pings every ~15 s",
        },
        429: {"description": "Too many open streams for this user (TOO_MANY_STREAMS)"},
    },
)
async def stream(
    user: CurrentUser,
    session: SessionDep,
    request: Request,
    last_event_id: Annotated[
        int | None,
        Header(ge=0, description="Resume after this event id (sent by EventSource itself)."),
    ] = None,
) -> EventSourceResponse:
    """Live notifications as server-sent events; reconnect with ``Last-Event-ID`` to get
    what was missed. At most ``SOUNDHIVE_NOTIFICATIONS_MAX_STREAMS`` streams per user."""
    kernel = kernel_of(request)
    await session.close()  # a stream may stay open for hours: give the connection back
    cfg = service.settings_of(kernel)
    stream_id = uuid.uuid4().hex
    if not await live.acquire_slot(kernel, user.id, stream_id, cfg.max_streams):
        raise RateLimited(
            f"At most {cfg.max_streams} notification streams may be open at once.",
            code="TOO_MANY_STREAMS",
            headers={"Retry-After": "10"},
        )
    shutdown = anyio.Event()
    events = notification_events(
        kernel, user.id, last_seq=last_event_id, stream_id=stream_id, shutdown=shutdown
    )
    return EventSourceResponse(
        events,
        ping=cfg.ping_seconds,
        send_timeout=30,
        shutdown_event=shutdown,
        shutdown_grace_period=1.5,
        background=BackgroundTask(live.release_slot, kernel, user.id, stream_id),
    )
