"""The ``user_profiles`` table: one row per auth ``sub``, soft-deleted, never hard-deleted."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Integer,
    String,
    UniqueConstraint,
    func,
    text,
)
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class UserProfile(SQLModel, table=True):
    """A user's public profile plus the private bits (email, ban and deletion state).

    ``handle`` is stored lower-case (a CHECK enforces it), so a plain unique constraint makes
    handles unique case-insensitively and lookups can use the index directly.
    """

    __tablename__ = "user_profiles"
    __table_args__ = (
        UniqueConstraint("sub", name="uq_user_profiles_sub"),
        UniqueConstraint("handle", name="uq_user_profiles_handle"),
        CheckConstraint("handle = lower(handle)", name="ck_user_profiles_handle_lower"),
        CheckConstraint("followers_count >= 0", name="ck_user_profiles_followers_count"),
        CheckConstraint("following_count >= 0", name="ck_user_profiles_following_count"),
        CheckConstraint("tracks_count >= 0", name="ck_user_profiles_tracks_count"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    sub: str = Field(sa_column=Column(String(255), nullable=False))
    handle: str = Field(sa_column=Column(String(30), nullable=False))
    display_name: str = Field(sa_column=Column(String(80), nullable=False))
    bio: str | None = Field(default=None, sa_column=Column(String(500), nullable=True))
    avatar_url: str | None = Field(default=None, sa_column=Column(String(2048), nullable=True))
    email: str | None = Field(default=None, sa_column=Column(String(320), nullable=True))
    followers_count: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default=text("0"))
    )
    following_count: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default=text("0"))
    )
    tracks_count: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default=text("0"))
    )
    is_banned: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=text("false"))
    )
    banned_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    deleted_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    created_at: datetime = Field(
        default_factory=utcnow,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now()),
    )
    updated_at: datetime = Field(
        default_factory=utcnow,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now()),
    )

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None
