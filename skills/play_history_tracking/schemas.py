"""API models of plays and history entries (SPEC §5 "History entry": track, played_at,
played_ms; ``counted`` is extra)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from skills.music_streaming_basic.api import TrackRead

MAX_PLAYED_MS = 86_400_000
"""A day: longer reports are client bugs (and would overflow nothing, but mean nothing)."""

UtcDatetime = Annotated[
    datetime, PlainSerializer(lambda v: v.astimezone(UTC), return_type=datetime)
]
"""RFC 3339 in UTC whatever the database session's time zone."""


class PlayReport(BaseModel):
    """What a player reports when a listen ends (or starts, without ``played_ms``)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"played_ms": 95_000}, {}]},
    )

    played_ms: int | None = Field(
        default=None,
        ge=0,
        le=MAX_PLAYED_MS,
        strict=True,
        description="Milliseconds actually played. Omit it to count the play unconditionally.",
    )


class PlayResult(BaseModel):
    """Whether this play counted, and the track's play count afterwards."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"counted": True, "play_count": 42}]})

    counted: bool
    play_count: int


class HistoryEntry(BaseModel):
    """One play in the caller's history (only tracks the caller may still see)."""

    track: TrackRead
    played_at: UtcDatetime
    played_ms: int | None = Field(default=None, examples=[95_000])
    counted: bool = Field(description="Whether the play counted toward play_count.")


HISTORY_EXAMPLE: dict[str, Any] = {
    "items": [
        {
            "track": {
                "id": "5f0c6a4e-8d1b-4c59-9a57-0b7f0e7c1a11",
                "owner_id": "0b8f5c9e-2f4a-4d1e-8a57-3c2d1e0f9a88",
                "title": "잔잔한 밤 산책",
                "visibility": "public",
                "status": "ready",
                "duration_ms": 183_000,
                "play_count": 42,
            },
            "played_at": "2026-03-01T21:04:05Z",
            "played_ms": 95_000,
            "counted": True,
        }
    ],
    "next_cursor": None,
}


class HistoryPage(BaseModel):
    """Newest first; ``next_cursor`` is null on the last page."""

    model_config = ConfigDict(json_schema_extra={"examples": [HISTORY_EXAMPLE]})

    items: list[HistoryEntry]
    next_cursor: str | None = None
