"""admin-moderation: reports and the append-only audit log

Revision ID: admin_moderation_0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "admin_moderation_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("admin-moderation",)
depends_on: str | Sequence[str] | None = (
    "core_0001",
    "user_profile_0001",
    "music_streaming_basic_0001",
    "interaction_like_comment_0001",
    "playlist_management_0001",
)

# The audit log is append-only in the database itself, not just by convention: any UPDATE or
# DELETE statement on it fails (statement-level, so even one matching no row). TRUNCATE is not
# covered: it needs table ownership and is how test suites and operators' retention jobs empty
# the table on purpose.
APPEND_ONLY_FUNCTION = """
CREATE FUNCTION moderation_audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'moderation_audit_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""
APPEND_ONLY_TRIGGER = """
CREATE TRIGGER trg_moderation_audit_log_append_only
BEFORE UPDATE OR DELETE ON moderation_audit_log
FOR EACH STATEMENT EXECUTE FUNCTION moderation_audit_log_append_only()
"""


def upgrade() -> None:
    op.create_table(
        "moderation_audit_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("actor_sub", sa.String(length=255), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("target_type", sa.String(length=16), nullable=False),
        sa.Column("target_id", sa.Uuid(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column(
            "details",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_moderation_audit_log_actor", "moderation_audit_log", ["actor_id", "id"], unique=False
    )
    op.create_index(
        "ix_moderation_audit_log_target",
        "moderation_audit_log",
        ["target_type", "target_id", "id"],
        unique=False,
    )
    op.execute(APPEND_ONLY_FUNCTION)
    op.execute(APPEND_ONLY_TRIGGER)

    op.create_table(
        "moderation_reports",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("reporter_id", sa.Uuid(), nullable=False),
        sa.Column("target_type", sa.String(length=16), nullable=False),
        sa.Column("target_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="open", nullable=False),
        sa.Column("action", sa.String(length=16), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("resolved_by", sa.Uuid(), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "action IS NULL OR action IN ('hide', 'delete', 'ban', 'dismiss')",
            name="ck_moderation_reports_action",
        ),
        sa.CheckConstraint(
            "status IN ('open', 'resolved', 'dismissed')", name="ck_moderation_reports_status"
        ),
        sa.CheckConstraint(
            "target_type IN ('track', 'comment', 'user', 'playlist')",
            name="ck_moderation_reports_target",
        ),
        sa.ForeignKeyConstraint(
            ["reporter_id"],
            ["user_profiles.id"],
            name="fk_moderation_reports_reporter_id",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_moderation_reports_created", "moderation_reports", ["created_at", "id"], unique=False
    )
    op.create_index(
        "ix_moderation_reports_open_target",
        "moderation_reports",
        ["target_type", "target_id"],
        unique=False,
        postgresql_where=sa.text("status = 'open'"),
    )
    op.create_index(
        "ix_moderation_reports_queue",
        "moderation_reports",
        ["status", "created_at", "id"],
        unique=False,
    )
    op.create_index(
        "ix_moderation_reports_reporter", "moderation_reports", ["reporter_id"], unique=False
    )
    # one open report per reporter and target: filing is idempotent under concurrency
    op.create_index(
        "uq_moderation_reports_open",
        "moderation_reports",
        ["reporter_id", "target_type", "target_id"],
        unique=True,
        postgresql_where=sa.text("status = 'open'"),
    )


def downgrade() -> None:
    op.drop_table("moderation_reports")  # its indexes go with it
    # dropping the table drops its trigger (and with it the log: a downgrade is deliberate)
    op.drop_table("moderation_audit_log")
    op.execute("DROP FUNCTION moderation_audit_log_append_only()")
