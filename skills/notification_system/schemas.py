"""API models of notifications. Field names are the SPEC §5 contract (``actor`` and ``seq``
are extras)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from skills.user_profile.api import ProfileRead

NotificationType = Literal["like", "comment", "follow", "new_track"]


def _as_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, PlainSerializer(_as_utc, return_type=datetime)]
"""RFC 3339 in UTC whatever the database session's time zone."""

_EXAMPLE: dict[str, Any] = {
    "id": "5c0f3a8e-2b7d-4c1e-9a7f-1d2e3f4a5b6c",
    "seq": 1042,
    "type": "like",
    "actor_id": "0b9f6c2e-5d1a-4a57-9a43-8f0f3f3c1e21",
    "track_id": "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a",
    "comment_id": None,
    "read": False,
    "created_at": "2026-03-02T08:30:00Z",
    "actor": None,
}


class NotificationRead(BaseModel):
    """One notification, with the actor's public profile embedded (``null`` if it is gone)."""

    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [_EXAMPLE]})

    id: uuid.UUID
    seq: int = Field(
        description="Delivery order; the SSE event id, usable as Last-Event-ID to resume."
    )
    type: NotificationType
    actor_id: uuid.UUID
    track_id: uuid.UUID | None = None
    comment_id: uuid.UUID | None = None
    read: bool
    created_at: UtcDatetime
    actor: ProfileRead | None = None


class UnreadCount(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"unread_count": 3}]})

    unread_count: int = Field(ge=0)


class ReadAll(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"updated": 3}]})

    updated: int = Field(ge=0, description="How many unread notifications were marked read.")
