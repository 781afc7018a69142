"""Tracks, tags and their link table. Counters live on the track row and are changed
atomically by the skills that own likes, comments and plays."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


def _counter() -> Any:
    return Field(default=0, sa_column=Column(Integer, nullable=False, server_default=text("0")))


class Track(SQLModel, table=True):
    """A track: metadata, processing results, visibility and moderation state."""

    __tablename__ = "tracks"
    __table_args__ = (
        Index("ix_tracks_created_at", text("created_at DESC"), text("id DESC")),
        Index("ix_tracks_owner_created", "owner_id", text("created_at DESC"), text("id DESC")),
        Index("ix_tracks_title_artist", "title", "artist_name"),
        Index("ix_tracks_trending_score", text("trending_score DESC"), text("id DESC")),
        CheckConstraint(
            "visibility IN ('public', 'unlisted', 'private')", name="ck_tracks_visibility"
        ),
        CheckConstraint("status IN ('processing', 'ready', 'failed')", name="ck_tracks_status"),
        CheckConstraint(
            "like_count >= 0 AND comment_count >= 0 AND play_count >= 0", name="ck_tracks_counts"
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    owner_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("user_profiles.id", ondelete="CASCADE"), nullable=False)
    )
    title: str = Field(sa_column=Column(String(200), nullable=False))
    artist_name: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    description: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    mood: str | None = Field(default=None, sa_column=Column(String(32), nullable=True))
    visibility: str = Field(
        default="public", sa_column=Column(String(16), nullable=False, server_default="public")
    )
    status: str = Field(
        default="processing",
        sa_column=Column(String(16), nullable=False, server_default="processing"),
    )
    failure_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    is_hidden: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=text("false"))
    )
    object_key: str = Field(sa_column=Column(String(512), nullable=False))
    content_type: str = Field(sa_column=Column(String(64), nullable=False))
    file_size: int = Field(sa_column=Column(BigInteger, nullable=False))
    format: str | None = Field(default=None, sa_column=Column(String(16), nullable=True))
    cover_key: str | None = Field(default=None, sa_column=Column(String(512), nullable=True))
    duration_ms: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    sample_rate: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    channels: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    bitrate: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    bpm: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    loudness_lufs: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    waveform: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB, nullable=True))
    processing_attempts: int = _counter()
    like_count: int = _counter()
    comment_count: int = _counter()
    play_count: int = _counter()
    trending_score: float = Field(
        default=0.0, sa_column=Column(Float, nullable=False, server_default=text("0"))
    )
    created_at: datetime = Field(
        default_factory=utcnow,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now()),
    )
    updated_at: datetime = Field(
        default_factory=utcnow,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now()),
    )
    ready_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )


class Tag(SQLModel, table=True):
    """A normalised tag (trimmed, lower-case). Tags are never deleted."""

    __tablename__ = "tags"
    __table_args__ = (UniqueConstraint("name", name="uq_tags_name"),)

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    name: str = Field(sa_column=Column(String(32), nullable=False))
    created_at: datetime = Field(
        default_factory=utcnow,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


class TrackTag(SQLModel, table=True):
    __tablename__ = "track_tags"
    __table_args__ = (
        UniqueConstraint("track_id", "tag_id", name="uq_track_tags_track_tag"),
        Index("ix_track_tags_tag_id", "tag_id", "track_id"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True))
    track_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("tracks.id", ondelete="CASCADE"), nullable=False)
    )
    tag_id: int = Field(sa_column=Column(ForeignKey("tags.id"), nullable=False))
    position: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
