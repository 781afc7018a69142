"""API models of tracks. Field names are the SPEC §5 contract."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

Visibility = Literal["public", "unlisted", "private"]
Status = Literal["processing", "ready", "failed"]

MOODS: tuple[str, ...] = (
    "calm",
    "chill",
    "dark",
    "dreamy",
    "energetic",
    "epic",
    "focus",
    "happy",
    "melancholic",
    "party",
    "romantic",
    "sad",
    "uplifting",
    "aggressive",
)
"""The mood vocabulary (small on purpose, so filters and recommendations line up)."""
Mood = Literal[
    "calm",
    "chill",
    "dark",
    "dreamy",
    "energetic",
    "epic",
    "focus",
    "happy",
    "melancholic",
    "party",
    "romantic",
    "sad",
    "uplifting",
    "aggressive",
]

MAX_TAGS = 10
MAX_TAG_LENGTH = 32
_SPACES = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def normalize_tag(raw: str) -> str:
    """Trim, lower-case and collapse inner whitespace; '#' prefixes are dropped."""
    tag = _SPACES.sub(" ", raw.strip().lstrip("#").strip()).lower()
    if not tag or len(tag) > MAX_TAG_LENGTH or _CONTROL.search(tag) or "," in tag:
        raise ValueError(f"a tag is 1 to {MAX_TAG_LENGTH} characters without commas: {raw!r}")
    return tag


def normalize_tags(raw: list[str]) -> list[str]:
    """Normalised, de-duplicated (first occurrence wins), at most ``MAX_TAGS``."""
    tags = list(dict.fromkeys(normalize_tag(t) for t in raw))
    if len(tags) > MAX_TAGS:
        raise ValueError(f"at most {MAX_TAGS} tags")
    return tags


def _no_control(value: str | None) -> str | None:
    if value is not None and _CONTROL.search(value.replace("\n", "").replace("\t", "")):
        raise ValueError("control characters are not allowed")
    return value


def _title(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("the title cannot be blank")
    _no_control(value)
    return value


Title = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_title)]
ArtistName = Annotated[str | None, Field(max_length=200), AfterValidator(_no_control)]
Description = Annotated[str | None, Field(max_length=5000), AfterValidator(_no_control)]
Tags = Annotated[list[str], Field(max_length=50), AfterValidator(normalize_tags)]


class Waveform(BaseModel):
    """BBC audiowaveform-style 8-bit peaks: ``data`` is ``[min, max, min, max, …]``."""

    samples_per_pixel: int
    data: list[int]
    version: int = 2
    channels: int = 1
    sample_rate: int | None = None
    bits: int = 8
    length: int | None = None


class TrackRead(BaseModel):
    """A track as lists show it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "5f0c6a4e-8d1b-4c59-9a57-0b7f0e7c1a11",
                    "owner_id": "0b8f5c9e-2f4a-4d1e-8a57-3c2d1e0f9a88",
                    "title": "잔잔한 밤 산책",
                    "artist_name": "Minji",
                    "tags": ["lofi", "night"],
                    "mood": "calm",
                    "visibility": "public",
                    "status": "ready",
                    "duration_ms": 183000,
                    "bpm": 84.0,
                    "like_count": 12,
                }
            ]
        }
    )

    id: uuid.UUID
    owner_id: uuid.UUID
    title: str
    artist_name: str | None = None
    description: str | None = None
    tags: list[str] = []
    mood: str | None = None
    visibility: Visibility
    status: Status
    failure_reason: str | None = None
    hidden: bool = False
    duration_ms: int | None = None
    sample_rate: int | None = None
    channels: int | None = None
    bitrate: int | None = None
    bpm: float | None = None
    loudness_lufs: float | None = None
    waveform: Waveform | None = None
    cover_url: str | None = None
    like_count: int = 0
    comment_count: int = 0
    play_count: int = 0
    created_at: datetime
    updated_at: datetime


class TrackDetail(TrackRead):
    """The detail view adds a short-lived ``stream_url`` (null until the track is ready)."""

    stream_url: str | None = None


class TrackUpdate(BaseModel):
    """Fields an owner may change; anything else in the body is refused."""

    model_config = ConfigDict(extra="forbid")

    title: Title | None = None
    artist_name: ArtistName = None
    description: Description = None
    tags: Tags | None = None
    mood: Mood | None = None
    visibility: Visibility | None = None


def track_data(row: Any, tags: list[str]) -> dict[str, Any]:
    """The cacheable, URL-free JSON form of a track row."""
    return {
        "id": str(row.id),
        "owner_id": str(row.owner_id),
        "title": row.title,
        "artist_name": row.artist_name,
        "description": row.description,
        "tags": tags,
        "mood": row.mood,
        "visibility": row.visibility,
        "status": row.status,
        "failure_reason": row.failure_reason,
        "hidden": row.is_hidden,
        "duration_ms": row.duration_ms,
        "sample_rate": row.sample_rate,
        "channels": row.channels,
        "bitrate": row.bitrate,
        "bpm": row.bpm,
        "loudness_lufs": row.loudness_lufs,
        "waveform": row.waveform,
        "like_count": row.like_count,
        "comment_count": row.comment_count,
        "play_count": row.play_count,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
        "object_key": row.object_key,
        "cover_key": row.cover_key,
    }
