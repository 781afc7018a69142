"""notification-system: notification_recipients, held so one recipient's rows commit in seq order

Revision ID: notification_system_0002
Revises: notification_system_0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "notification_system_0002"
down_revision: str | Sequence[str] | None = "notification_system_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notification_recipients",
        sa.Column("recipient_id", sa.Uuid(), nullable=False),
        sa.Column(
            "last_notified_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["recipient_id"], ["user_profiles.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("recipient_id"),
    )


def downgrade() -> None:
    op.drop_table("notification_recipients")
