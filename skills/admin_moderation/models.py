"""``moderation_reports`` (the moderators' queue) and ``moderation_audit_log`` (append-only).

Neither table has a foreign key to what it points at: reports and audit entries must outlive
the track, comment or playlist they are about (deleting one is a moderation outcome), and a
cascade from a purged profile would try to delete audit rows, which the database refuses.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

TARGET_TYPES = ("track", "comment", "user", "playlist")
REPORT_STATUSES = ("open", "resolved", "dismissed")
ACTIONS = ("hide", "delete", "ban", "dismiss")


def utcnow() -> datetime:
    return datetime.now(UTC)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _timestamp(*, nullable: bool = False) -> Any:
    if nullable:
        return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    return Field(
        default_factory=utcnow,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


class Report(SQLModel, table=True):
    """A user's report of a track, comment, user or playlist.

    At most one *open* report per (reporter, target): the partial unique index makes filing
    idempotent under concurrency. Once resolved or dismissed, the same person may report the
    target again (it may have been unhidden, or changed).
    """

    __tablename__ = "moderation_reports"
    __table_args__ = (
        CheckConstraint(_in("target_type", TARGET_TYPES), name="ck_moderation_reports_target"),
        CheckConstraint(_in("status", REPORT_STATUSES), name="ck_moderation_reports_status"),
        CheckConstraint(
            f"action IS NULL OR {_in('action', ACTIONS)}", name="ck_moderation_reports_action"
        ),
        Index(
            "uq_moderation_reports_open",
            "reporter_id",
            "target_type",
            "target_id",
            unique=True,
            postgresql_where=text("status = 'open'"),
        ),
        Index("ix_moderation_reports_queue", "status", "created_at", "id"),
        Index("ix_moderation_reports_created", "created_at", "id"),
        Index("ix_moderation_reports_reporter", "reporter_id"),
        Index(
            "ix_moderation_reports_open_target",
            "target_type",
            "target_id",
            postgresql_where=text("status = 'open'"),
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    reporter_id: uuid.UUID = Field(
        sa_column=Column(
            ForeignKey(
                "user_profiles.id", ondelete="CASCADE", name="fk_moderation_reports_reporter_id"
            ),
            nullable=False,
        )
    )
    target_type: str = Field(sa_column=Column(String(16), nullable=False))
    target_id: uuid.UUID = Field(nullable=False)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(
        default="open", sa_column=Column(String(16), nullable=False, server_default="open")
    )
    action: str | None = Field(default=None, sa_column=Column(String(16), nullable=True))
    note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    resolved_by: uuid.UUID | None = Field(default=None, nullable=True)
    resolved_at: datetime | None = _timestamp(nullable=True)
    created_at: datetime = _timestamp()


class AuditEntry(SQLModel, table=True):
    """One moderation action: who (profile id and token ``sub``), what, on which target, why.

    Append-only: a trigger of the migration raises on any UPDATE or DELETE statement, so not
    even a bug (or a hand-typed query) can rewrite history. ``id`` is an identity column
    (``GENERATED ALWAYS``), which also gives the log a total order for its cursor.
    """

    __tablename__ = "moderation_audit_log"
    __table_args__ = (
        Index("ix_moderation_audit_log_target", "target_type", "target_id", "id"),
        Index("ix_moderation_audit_log_actor", "actor_id", "id"),
    )

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger, Identity(always=True), primary_key=True),
    )
    actor_id: uuid.UUID | None = Field(default=None, nullable=True)
    actor_sub: str = Field(sa_column=Column(String(255), nullable=False))
    action: str = Field(sa_column=Column(String(32), nullable=False))
    target_type: str = Field(sa_column=Column(String(16), nullable=False))
    target_id: uuid.UUID = Field(nullable=False)
    note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    details: dict[str, Any] = Field(
        default_factory=dict,
        sa_column=Column(JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    )
    created_at: datetime = _timestamp()
