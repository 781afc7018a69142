"""The ``follows`` table: one row per (follower, followed) edge between two profiles."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    UniqueConstraint,
    func,
    text,
)
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class Follow(SQLModel, table=True):
    """``follower_id`` follows ``following_id``.

    The unique pair makes follow idempotent (``INSERT … ON CONFLICT DO NOTHING``) and is also
    the index for "does A follow B". The two ``(…, created_at DESC, id DESC)`` indexes serve
    the followers / following lists and their keyset cursors without a sort. Profiles are
    soft-deleted, so the ``CASCADE`` only matters if a profile row is ever purged.
    """

    __tablename__ = "follows"
    __table_args__ = (
        UniqueConstraint("follower_id", "following_id", name="uq_follows_follower_following"),
        CheckConstraint("follower_id <> following_id", name="ck_follows_not_self"),
        Index(
            "ix_follows_following_created",
            "following_id",
            text("created_at DESC"),
            text("id DESC"),
        ),
        Index(
            "ix_follows_follower_created",
            "follower_id",
            text("created_at DESC"),
            text("id DESC"),
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    follower_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("user_profiles.id", ondelete="CASCADE"), nullable=False)
    )
    following_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("user_profiles.id", ondelete="CASCADE"), nullable=False)
    )
    created_at: datetime = Field(
        default_factory=utcnow,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now()),
    )
