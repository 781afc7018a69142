"""play history

Revision ID: play_history_tracking_0001
Revises:
Create Date: 2026-11-22 23:03:39.007531
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "play_history_tracking_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("play-history-tracking",)
depends_on: str | Sequence[str] | None = (
    "core_0001",
    "user_profile_0001",
    "music_streaming_basic_0001",
)


def upgrade() -> None:
    op.create_table(
        "play_history",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("track_id", sa.Uuid(), nullable=False),
        sa.Column(
            "played_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("played_ms", sa.Integer(), nullable=True),
        sa.Column("counted", sa.Boolean(), nullable=False),
        sa.CheckConstraint("played_ms IS NULL OR played_ms >= 0", name="ck_play_history_played_ms"),
        sa.CheckConstraint("user_id IS NOT NULL OR counted", name="ck_play_history_anonymous"),
        sa.ForeignKeyConstraint(["track_id"], ["tracks.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["user_profiles.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_play_history_user_played",
        "play_history",
        ["user_id", sa.literal_column("played_at DESC"), sa.literal_column("id DESC")],
        unique=False,
        postgresql_where=sa.text("user_id IS NOT NULL"),
    )
    op.create_index(
        "ix_play_history_track_played", "play_history", ["track_id", "played_at"], unique=False
    )
    op.create_index(
        "ix_play_history_counted_played",
        "play_history",
        ["played_at", "track_id"],
        unique=False,
        postgresql_where=sa.text("counted"),
    )


def downgrade() -> None:
    op.drop_index("ix_play_history_counted_played", table_name="play_history")
    op.drop_index("ix_play_history_track_played", table_name="play_history")
    op.drop_index("ix_play_history_user_played", table_name="play_history")
    op.drop_table("play_history")
