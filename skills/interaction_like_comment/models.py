"""The ``likes`` and ``comments`` tables. Counters live on ``tracks`` and move only with a row
that really changed, so ``like_count`` / ``comment_count`` always equal the row counts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


def _created_at() -> datetime:
    return Field(  # type: ignore[no-any-return]
        default_factory=utcnow,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


class Like(SQLModel, table=True):
    """``user_id`` likes ``track_id``. The unique pair makes liking idempotent
    (``INSERT … ON CONFLICT DO NOTHING``); the two ``created_at DESC`` indexes serve the
    "who liked" and "what I liked" lists and their keyset cursors without a sort."""

    __tablename__ = "likes"
    __table_args__ = (
        UniqueConstraint("track_id", "user_id", name="uq_likes_track_user"),
        Index("ix_likes_user_created", "user_id", text("created_at DESC"), text("id DESC")),
        Index("ix_likes_track_created", "track_id", text("created_at DESC"), text("id DESC")),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    track_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("tracks.id", ondelete="CASCADE"), nullable=False)
    )
    user_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("user_profiles.id", ondelete="CASCADE"), nullable=False)
    )
    created_at: datetime = _created_at()


class Comment(SQLModel, table=True):
    """A comment on a track, optionally at ``position_ms``; a reply has a top-level
    ``parent_id`` on the same track (one level only, enforced by the service). ``hidden`` is
    set by moderation: hidden comments show only to their author and moderators."""

    __tablename__ = "comments"
    __table_args__ = (
        Index("ix_comments_track_created", "track_id", text("created_at DESC"), text("id DESC")),
        Index("ix_comments_parent_created", "parent_id", "created_at", "id"),
        Index("ix_comments_author_created", "author_id", text("created_at DESC")),
        CheckConstraint("position_ms IS NULL OR position_ms >= 0", name="ck_comments_position"),
        CheckConstraint("parent_id IS NULL OR parent_id <> id", name="ck_comments_not_own_parent"),
        CheckConstraint("char_length(body) BETWEEN 1 AND 2000", name="ck_comments_body_length"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    track_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("tracks.id", ondelete="CASCADE"), nullable=False)
    )
    author_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("user_profiles.id", ondelete="CASCADE"), nullable=False)
    )
    parent_id: uuid.UUID | None = Field(
        default=None,
        sa_column=Column(ForeignKey("comments.id", ondelete="CASCADE"), nullable=True),
    )
    body: str = Field(sa_column=Column(Text, nullable=False))
    position_ms: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    hidden: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=text("false"))
    )
    created_at: datetime = _created_at()
    updated_at: datetime = _created_at()
