"""user-follow-system: the follows table

Revision ID: user_follow_system_0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "user_follow_system_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("user-follow-system",)
depends_on: str | Sequence[str] | None = ("core_0001", "user_profile_0001")


def upgrade() -> None:
    op.create_table(
        "follows",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("follower_id", sa.Uuid(), nullable=False),
        sa.Column("following_id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("follower_id <> following_id", name="ck_follows_not_self"),
        # Profiles are soft-deleted; the cascade only matters if a profile row is ever purged.
        sa.ForeignKeyConstraint(["follower_id"], ["user_profiles.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["following_id"], ["user_profiles.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        # One edge per pair: makes follow idempotent and answers "does A follow B".
        sa.UniqueConstraint("follower_id", "following_id", name="uq_follows_follower_following"),
    )
    # Keyset pages of the following / followers lists, newest first, without a sort.
    op.create_index(
        "ix_follows_follower_created",
        "follows",
        ["follower_id", sa.literal_column("created_at DESC"), sa.literal_column("id DESC")],
        unique=False,
    )
    op.create_index(
        "ix_follows_following_created",
        "follows",
        ["following_id", sa.literal_column("created_at DESC"), sa.literal_column("id DESC")],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_follows_following_created", table_name="follows")
    op.drop_index("ix_follows_follower_created", table_name="follows")
    op.drop_table("follows")
