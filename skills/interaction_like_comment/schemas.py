"""API models of likes and comments. Field names are the SPEC §5 contract; every body rule
lives here so it surfaces as 422 ``VALIDATION_FAILED`` with ``errors: [{loc, msg}]``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer
from pydantic_core import PydanticCustomError

from skills.music_streaming_basic.api import TrackRead
from skills.user_profile.api import ProfileRead

BODY_MAX = 2000
POSITION_MAX = 2**31 - 1
# Bidirectional overrides/isolates make text render as something else (spoofing).
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _as_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, PlainSerializer(_as_utc, return_type=datetime)]
"""RFC 3339 in UTC whatever the database session's time zone."""


def check_body(value: str) -> str:
    """Trimmed, 1–2000 characters; line breaks allowed (``\\r\\n`` → ``\\n``), no other
    control characters."""
    value = value.replace("\r\n", "\n").strip()
    if not value:
        raise PydanticCustomError("body_blank", "body must not be blank")
    if len(value) > BODY_MAX:
        raise PydanticCustomError(
            "body_too_long", "body must be at most {max} characters", {"max": BODY_MAX}
        )
    if any(
        (ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 or ch in _BIDI) and ch != "\n" for ch in value
    ):
        raise PydanticCustomError(
            "body_control", "body must not contain control characters other than newline"
        )
    return value


Body = Annotated[str, Field(max_length=4 * BODY_MAX), AfterValidator(check_body)]
PositionMs = Annotated[int, Field(ge=0, le=POSITION_MAX)]


class LikeState(BaseModel):
    """The caller's like of a track as it is after the request (same answer on repeats)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"liked": True, "like_count": 13}]})

    liked: bool
    like_count: int = Field(ge=0, description="Likes of the track (equals its like rows).")


class Liker(ProfileRead):
    """A profile that liked the track, with when."""

    liked_at: UtcDatetime


class LikedTrack(TrackRead):
    """A track the caller liked, with when."""

    liked_at: UtcDatetime


class CommentCreate(BaseModel):
    """A new comment; ``parent_id`` makes it a reply to a top-level comment of the track."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"body": "이 드랍 미쳤다 🔥", "position_ms": 61500},
                {"body": "agreed!", "parent_id": "9a1f0c6e-3b2d-4e5f-8a7b-6c5d4e3f2a1b"},
            ]
        },
    )

    body: Body = Field(description="1–2000 characters after trimming; newlines allowed.")
    position_ms: PositionMs | None = Field(
        default=None, description="Where in the track (0 ≤ position_ms ≤ duration_ms)."
    )
    parent_id: uuid.UUID | None = Field(
        default=None, description="A top-level comment of the same track (one reply level)."
    )


class CommentUpdate(BaseModel):
    """Only the body of a comment can change (by its author)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"body": "fixed"}]})

    body: Body


class CommentRead(BaseModel):
    """A comment with its author's profile and, for a top-level comment, its reply count."""

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "9a1f0c6e-3b2d-4e5f-8a7b-6c5d4e3f2a1b",
                    "track_id": "5f0c6a4e-8d1b-4c59-9a57-0b7f0e7c1a11",
                    "author_id": "0b8f5c9e-2f4a-4d1e-8a57-3c2d1e0f9a88",
                    "body": "이 드랍 미쳤다 🔥",
                    "position_ms": 61500,
                    "parent_id": None,
                    "reply_count": 2,
                    "hidden": False,
                    "created_at": "2026-03-01T12:00:00Z",
                    "updated_at": "2026-03-01T12:00:00Z",
                }
            ]
        },
    )

    id: uuid.UUID
    track_id: uuid.UUID
    author_id: uuid.UUID
    body: str
    position_ms: int | None = None
    parent_id: uuid.UUID | None = None
    reply_count: int = Field(default=0, description="Replies the caller can see (0 for replies).")
    hidden: bool = Field(default=False, description="Hidden by moderation (author/moderators).")
    author: ProfileRead | None = None
    created_at: UtcDatetime
    updated_at: UtcDatetime


def comment_read(row: Any, author: Any = None, reply_count: int = 0) -> CommentRead:
    """API form of a ``Comment`` row, with the author's ``UserProfile`` row if loaded."""
    read = CommentRead.model_validate(row)
    read.reply_count = reply_count
    read.author = ProfileRead.model_validate(author) if author is not None else None
    return read
