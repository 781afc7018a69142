"""Playlists, their ordered entries, and the repair marks a track deletion leaves behind.

Entry positions are 0-based and contiguous. Every change to a playlist's entries runs under a
lock on the playlist row; ``UNIQUE(playlist_id, position)`` is DEFERRABLE INITIALLY DEFERRED so
a shift (``position = position + 1``) may pass through duplicates inside one transaction and is
checked at commit — a safety net, not the mechanism.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


def _timestamp() -> Any:
    return Field(
        default_factory=utcnow,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


class Playlist(SQLModel, table=True):
    """A user's playlist. ``track_count`` is kept equal to its number of entries."""

    __tablename__ = "playlists"
    __table_args__ = (
        Index("ix_playlists_owner_created", "owner_id", text("created_at DESC"), text("id DESC")),
        Index("ix_playlists_forked_from_id", "forked_from_id"),
        CheckConstraint(
            "visibility IN ('public', 'unlisted', 'private')", name="ck_playlists_visibility"
        ),
        CheckConstraint("track_count >= 0", name="ck_playlists_track_count"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    owner_id: uuid.UUID = Field(
        sa_column=Column(
            ForeignKey("user_profiles.id", ondelete="CASCADE", name="fk_playlists_owner_id"),
            nullable=False,
        )
    )
    title: str = Field(sa_column=Column(String(200), nullable=False))
    description: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    visibility: str = Field(
        default="public", sa_column=Column(String(16), nullable=False, server_default="public")
    )
    forked_from_id: uuid.UUID | None = Field(
        default=None,
        sa_column=Column(
            ForeignKey("playlists.id", ondelete="SET NULL", name="fk_playlists_forked_from_id"),
            nullable=True,
        ),
    )
    track_count: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default=text("0"))
    )
    created_at: datetime = _timestamp()
    updated_at: datetime = _timestamp()


class PlaylistTrack(SQLModel, table=True):
    """One entry: a track at a position. A track appears at most once per playlist."""

    __tablename__ = "playlist_tracks"
    __table_args__ = (
        UniqueConstraint(
            "playlist_id",
            "position",
            name="uq_playlist_tracks_position",
            deferrable=True,
            initially="DEFERRED",
        ),
        Index("ix_playlist_tracks_track_id", "track_id"),
        CheckConstraint("position >= 0", name="ck_playlist_tracks_position"),
    )

    playlist_id: uuid.UUID = Field(
        sa_column=Column(
            ForeignKey("playlists.id", ondelete="CASCADE", name="fk_playlist_tracks_playlist_id"),
            primary_key=True,
            nullable=False,
        )
    )
    track_id: uuid.UUID = Field(
        sa_column=Column(
            ForeignKey("tracks.id", ondelete="CASCADE", name="fk_playlist_tracks_track_id"),
            primary_key=True,
            nullable=False,
        )
    )
    position: int = Field(sa_column=Column(Integer, nullable=False))
    added_at: datetime = _timestamp()


class PlaylistRepair(SQLModel, table=True):
    """A playlist whose entries lost rows to a track deletion (FK cascade) and must be
    renumbered. Written by the ``playlist_tracks`` delete trigger (see the migration);
    ``generation`` grows with every new mark, so a repair only clears what it has seen.

    No foreign key on purpose: its ``KEY SHARE`` check would make a track deletion wait for
    a concurrent deletion of the playlist, which itself waits for the track's entries — a
    deadlock. A mark whose playlist is gone is simply dropped by the repair.
    """

    __tablename__ = "playlist_repairs"

    playlist_id: uuid.UUID = Field(primary_key=True)
    generation: int = Field(
        default=1, sa_column=Column(Integer, nullable=False, server_default=text("1"))
    )
    marked_at: datetime = _timestamp()
