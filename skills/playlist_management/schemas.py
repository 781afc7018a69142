"""API models of playlists. Field names are the SPEC §5 contract; every rule is a 422."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer

from skills.music_streaming_basic.api import TrackRead

Visibility = Literal["public", "unlisted", "private"]
TITLE_MAX = 200
DESCRIPTION_MAX = 2000
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069]")


def _as_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, PlainSerializer(_as_utc, return_type=datetime)]
"""RFC 3339 in UTC whatever the database session's time zone."""


def _title(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("the title cannot be blank")
    if _CONTROL.search(value) or "\n" in value or "\t" in value:
        raise ValueError("control characters are not allowed in a title")
    return value


def _description(value: str | None) -> str | None:
    if value is None:
        return None
    if _CONTROL.search(value):
        raise ValueError("control characters are not allowed (newline and tab are)")
    return value.strip() or None


Title = Annotated[str, Field(min_length=1, max_length=TITLE_MAX), AfterValidator(_title)]
Description = Annotated[str | None, Field(max_length=DESCRIPTION_MAX), AfterValidator(_description)]

_PLAYLIST_EXAMPLE: dict[str, Any] = {
    "id": "8c1d7e52-31a4-4e0b-9a0c-5b7e2f1d9c33",
    "owner_id": "0b8f5c9e-2f4a-4d1e-8a57-3c2d1e0f9a88",
    "title": "새벽 감성",
    "description": "Late-night lo-fi.",
    "visibility": "public",
    "forked_from_id": None,
    "track_count": 12,
    "created_at": "2026-03-01T12:00:00Z",
    "updated_at": "2026-03-02T08:30:00Z",
}


class PlaylistCreate(BaseModel):
    """A new playlist; any other field (``owner_id``, ``track_count`` …) is refused."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"title": "새벽 감성", "visibility": "unlisted"}]},
    )

    title: Title
    description: Description = None
    visibility: Visibility = "public"


class PlaylistUpdate(BaseModel):
    """What an owner may change. ``owner_id``, ``track_count``, ``forked_from_id`` … are
    refused with 422 (nothing is applied); ``description: null`` clears it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"title": "Focus", "visibility": "private"}]},
    )

    # Not Optional: an explicit null is refused; the default only marks "not sent".
    title: Title = Field(default=None)  # type: ignore[assignment]
    description: Description = None
    visibility: Visibility = Field(default=None)  # type: ignore[assignment,arg-type]


class ForkRequest(BaseModel):
    """Optional overrides for the copy; by default title, description and visibility are the
    source's."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{}]})

    title: Title = Field(default=None)  # type: ignore[assignment]
    description: Description = None
    visibility: Visibility = Field(default=None)  # type: ignore[assignment,arg-type]


class EntryAdd(BaseModel):
    """Add a track; without ``position`` it goes last. Later entries shift down by one."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"track_id": "5f0c6a4e-8d1b-4c59-9a57-0b7f0e7c1a11", "position": 0}]
        },
    )

    track_id: uuid.UUID
    position: int | None = Field(default=None, ge=0, description="0 … track_count")


class EntryMove(BaseModel):
    """Move an entry to ``position`` (0 … track_count - 1); the others close up around it."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"position": 0}]})

    position: int = Field(ge=0)


class PlaylistRead(BaseModel):
    """A playlist as lists show it."""

    model_config = ConfigDict(
        from_attributes=True, json_schema_extra={"examples": [_PLAYLIST_EXAMPLE]}
    )

    id: uuid.UUID
    owner_id: uuid.UUID
    title: str
    description: str | None = None
    visibility: Visibility
    forked_from_id: uuid.UUID | None = None
    track_count: int
    created_at: UtcDatetime
    updated_at: UtcDatetime


class PlaylistEntry(BaseModel):
    """One entry. ``position`` is the stored one: entries the viewer may not see are left
    out of someone else's playlist, so positions shown may skip numbers."""

    position: int
    added_at: UtcDatetime
    track: TrackRead


class PlaylistDetail(PlaylistRead):
    """The detail view adds ``tracks``, ordered by position."""

    model_config = ConfigDict(json_schema_extra={"examples": [{**_PLAYLIST_EXAMPLE, "tracks": []}]})

    tracks: list[PlaylistEntry]
