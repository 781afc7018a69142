"""The ``notifications`` table: one row per (recipient, type, actor, target)."""

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
    String,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlmodel import Field, SQLModel

TYPES = ("like", "comment", "follow", "new_track")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Notification(SQLModel, table=True):
    """``actor_id`` did ``type`` to ``recipient_id`` (about ``track_id`` / ``comment_id``).

    ``id`` is a UUID like every other resource; ``seq`` (identity) is the delivery order: the
    list's keyset and the SSE ``id:``, so ``Last-Event-ID`` resumes with one index range.
    The unique target treats NULLs as equal (PostgreSQL 15+), so like/unlike/like or a
    redelivered event never makes a second row. Deleting a profile, track or comment deletes
    its notifications (the track/comment indexes make those cascades cheap).
    """

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint(
            "recipient_id",
            "type",
            "actor_id",
            "track_id",
            "comment_id",
            name="uq_notifications_target",
            postgresql_nulls_not_distinct=True,
        ),
        CheckConstraint("recipient_id <> actor_id", name="ck_notifications_not_self"),
        CheckConstraint(
            "type IN ('like', 'comment', 'follow', 'new_track')", name="ck_notifications_type"
        ),
        Index("ix_notifications_recipient_seq", "recipient_id", text("seq DESC")),
        Index(
            "ix_notifications_recipient_unread",
            "recipient_id",
            text("seq DESC"),
            postgresql_where=text("NOT read"),
        ),
        Index("ix_notifications_actor", "actor_id"),
        Index("ix_notifications_track", "track_id", postgresql_where=text("track_id IS NOT NULL")),
        Index(
            "ix_notifications_comment",
            "comment_id",
            postgresql_where=text("comment_id IS NOT NULL"),
        ),
    )

    id: uuid.UUID = Field(
        default_factory=uuid.uuid4,
        sa_column=Column(
            Uuid, primary_key=True, nullable=False, server_default=text("gen_random_uuid()")
        ),
    )
    seq: int | None = Field(
        default=None, sa_column=Column(BigInteger, Identity(always=True), nullable=False)
    )
    recipient_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("user_profiles.id", ondelete="CASCADE"), nullable=False)
    )
    type: str = Field(sa_column=Column(String(16), nullable=False))
    actor_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("user_profiles.id", ondelete="CASCADE"), nullable=False)
    )
    track_id: uuid.UUID | None = Field(
        default=None,
        sa_column=Column(ForeignKey("tracks.id", ondelete="CASCADE"), nullable=True),
    )
    comment_id: uuid.UUID | None = Field(
        default=None,
        sa_column=Column(ForeignKey("comments.id", ondelete="CASCADE"), nullable=True),
    )
    read: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=text("false"))
    )
    created_at: datetime = Field(
        default_factory=utcnow,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


class NotificationRecipient(SQLModel, table=True):
    """One row per account ever notified, locked by every transaction that makes
    notifications for it (``repository.hold_recipients``) until that transaction commits.

    ``seq`` is drawn at insert, so without this two transactions for one recipient could
    commit out of ``seq`` order, and a stream resuming with ``Last-Event-ID`` (or polling
    while Redis is down) asks for ``seq > n`` and would never see the row that committed
    after a larger one. Holding the recipient first makes a later transaction draw its
    ``seq`` after the earlier one committed. A row lock, unlike an advisory lock, costs no
    slot in PostgreSQL's shared lock table, so a fan-out batch may hold hundreds.
    """

    __tablename__ = "notification_recipients"

    recipient_id: uuid.UUID = Field(
        sa_column=Column(
            ForeignKey("user_profiles.id", ondelete="CASCADE"), primary_key=True, nullable=False
        )
    )
    last_notified_at: datetime = Field(
        default_factory=utcnow,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now()),
    )
