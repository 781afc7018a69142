"""The ``play_history`` table: every play of a signed-in listener, and counted anonymous plays.

One table serves both readers. ``GET /users/me/history`` reads rows of one ``user_id``;
trending reads *counted* rows of every track in a time window, anonymous ones included
(``user_id`` NULL: no identity, not even an IP, is kept, so they are nobody's history).
Uncounted anonymous plays are not stored at all — nothing could ever read them.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    func,
    text,
)
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class PlayHistory(SQLModel, table=True):
    """One play. ``counted`` says whether it moved ``tracks.play_count``.

    A bigint identity key (not a UUID): rows are never exposed by id, and a sequential key
    keeps this insert-heavy table's indexes compact. Indexes: the history list and its keyset
    cursor; per-track windows (and the cascade when a track is deleted); and a partial index
    of counted plays by time for windowed counts across all tracks.
    """

    __tablename__ = "play_history"
    __table_args__ = (
        Index(
            "ix_play_history_user_played",
            "user_id",
            text("played_at DESC"),
            text("id DESC"),
            postgresql_where=text("user_id IS NOT NULL"),
        ),
        Index("ix_play_history_track_played", "track_id", "played_at"),
        Index(
            "ix_play_history_counted_played",
            "played_at",
            "track_id",
            postgresql_where=text("counted"),
        ),
        CheckConstraint("played_ms IS NULL OR played_ms >= 0", name="ck_play_history_played_ms"),
        CheckConstraint("user_id IS NOT NULL OR counted", name="ck_play_history_anonymous"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    user_id: uuid.UUID | None = Field(
        default=None,
        sa_column=Column(ForeignKey("user_profiles.id", ondelete="CASCADE"), nullable=True),
    )
    track_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("tracks.id", ondelete="CASCADE"), nullable=False)
    )
    played_at: datetime = Field(
        default_factory=utcnow,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now()),
    )
    played_ms: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    counted: bool = Field(sa_column=Column(Boolean, nullable=False))
