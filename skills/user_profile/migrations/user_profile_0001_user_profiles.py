"""user-profile: the user_profiles table

Revision ID: user_profile_0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "user_profile_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("user-profile",)
depends_on: str | Sequence[str] | None = ("core_0001",)


def upgrade() -> None:
    op.create_table(
        "user_profiles",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("sub", sa.String(length=255), nullable=False),
        sa.Column("handle", sa.String(length=30), nullable=False),
        sa.Column("display_name", sa.String(length=80), nullable=False),
        sa.Column("bio", sa.String(length=500), nullable=True),
        sa.Column("avatar_url", sa.String(length=2048), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("followers_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("following_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("tracks_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("is_banned", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("banned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("followers_count >= 0", name="ck_user_profiles_followers_count"),
        sa.CheckConstraint("following_count >= 0", name="ck_user_profiles_following_count"),
        sa.CheckConstraint("tracks_count >= 0", name="ck_user_profiles_tracks_count"),
        # Handles are stored lower-case, so the plain unique constraint is case-insensitive.
        sa.CheckConstraint("handle = lower(handle)", name="ck_user_profiles_handle_lower"),
        sa.PrimaryKeyConstraint("id", name="pk_user_profiles"),
        sa.UniqueConstraint("handle", name="uq_user_profiles_handle"),
        sa.UniqueConstraint("sub", name="uq_user_profiles_sub"),
    )


def downgrade() -> None:
    op.drop_table("user_profiles")
