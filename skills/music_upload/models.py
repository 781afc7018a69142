"""Upload sessions: the server-side record of step 1 that step 3 must match."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    String,
    Text,
    func,
)
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class UploadSession(SQLModel, table=True):
    """``pending`` until finalized (→ ``finalized`` with a track), refused after inspection
    (→ ``rejected`` with a reason) or never finished (→ ``expired``, object deleted)."""

    __tablename__ = "upload_sessions"
    __table_args__ = (
        Index("ix_upload_sessions_owner_state", "owner_id", "state"),
        Index("ix_upload_sessions_state_expires", "state", "expires_at"),
        CheckConstraint(
            "state IN ('pending', 'finalized', 'rejected', 'expired')",
            name="ck_upload_sessions_state",
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    owner_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("user_profiles.id", ondelete="CASCADE"), nullable=False)
    )
    object_key: str = Field(sa_column=Column(String(512), nullable=False, unique=True))
    filename: str = Field(sa_column=Column(String(255), nullable=False))
    content_type: str = Field(sa_column=Column(String(64), nullable=False))
    file_size: int = Field(sa_column=Column(BigInteger, nullable=False))
    state: str = Field(default="pending", sa_column=Column(String(16), nullable=False))
    rejection_code: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    rejection_detail: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    track_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(ForeignKey("tracks.id", ondelete="SET NULL"), nullable=True)
    )
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    created_at: datetime = Field(
        default_factory=utcnow,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now()),
    )
