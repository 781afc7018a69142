"""notification-system: the notifications table

Revision ID: notification_system_0001
Revises:
Create Date: 2026-11-22

Needs PostgreSQL 15+ (UNIQUE NULLS NOT DISTINCT).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "notification_system_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("notification-system",)
depends_on: str | Sequence[str] | None = (
    "core_0001",
    "user_profile_0001",
    "user_follow_system_0001",
    "music_streaming_basic_0001",
    "interaction_like_comment_0001",
)


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        # Delivery order: the list's keyset and the SSE event id (Last-Event-ID).
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("recipient_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=False),
        sa.Column("track_id", sa.Uuid(), nullable=True),
        sa.Column("comment_id", sa.Uuid(), nullable=True),
        sa.Column("read", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "type IN ('like', 'comment', 'follow', 'new_track')", name="ck_notifications_type"
        ),
        sa.CheckConstraint("recipient_id <> actor_id", name="ck_notifications_not_self"),
        # A deleted profile, track or comment takes its notifications with it.
        sa.ForeignKeyConstraint(["actor_id"], ["user_profiles.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["comment_id"], ["comments.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["recipient_id"], ["user_profiles.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["track_id"], ["tracks.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        # One notification per (recipient, type, actor, target); NULL targets compare equal.
        sa.UniqueConstraint(
            "recipient_id",
            "type",
            "actor_id",
            "track_id",
            "comment_id",
            name="uq_notifications_target",
            postgresql_nulls_not_distinct=True,
        ),
    )
    # The list (newest first) and the unread list / count, without a sort.
    op.create_index(
        "ix_notifications_recipient_seq",
        "notifications",
        ["recipient_id", sa.literal_column("seq DESC")],
        unique=False,
    )
    op.create_index(
        "ix_notifications_recipient_unread",
        "notifications",
        ["recipient_id", sa.literal_column("seq DESC")],
        unique=False,
        postgresql_where=sa.text("NOT read"),
    )
    # Cascades from profiles, tracks and comments, and a banned actor's recipients.
    op.create_index("ix_notifications_actor", "notifications", ["actor_id"], unique=False)
    op.create_index(
        "ix_notifications_track",
        "notifications",
        ["track_id"],
        unique=False,
        postgresql_where=sa.text("track_id IS NOT NULL"),
    )
    op.create_index(
        "ix_notifications_comment",
        "notifications",
        ["comment_id"],
        unique=False,
        postgresql_where=sa.text("comment_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_notifications_comment", table_name="notifications")
    op.drop_index("ix_notifications_track", table_name="notifications")
    op.drop_index("ix_notifications_actor", table_name="notifications")
    op.drop_index("ix_notifications_recipient_unread", table_name="notifications")
    op.drop_index("ix_notifications_recipient_seq", table_name="notifications")
    op.drop_table("notifications")
