"""tag-search-discovery: pg_trgm and the track_search documents

Revision ID: tag_search_discovery_0001
Revises:
Create Date: 2026-11-22 23:37:19.996349
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "tag_search_discovery_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("tag-search-discovery",)
depends_on: str | Sequence[str] | None = [
    "core_0001",
    "user_profile_0001",
    "music_streaming_basic_0001",
    "play_history_tracking_0001",
    "interaction_like_comment_0001",
]


def upgrade() -> None:
    # trigram operators and GIN opclass; superuser or a trusted extension (PG 13+) is needed
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_table(
        "track_search",
        sa.Column("track_id", sa.Uuid(), nullable=False),
        sa.Column("title_doc", sa.Text(), server_default="", nullable=False),
        sa.Column("artist_doc", sa.Text(), server_default="", nullable=False),
        sa.Column("tags_doc", sa.Text(), server_default="", nullable=False),
        sa.Column("body_doc", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "names",
            sa.Text(),
            sa.Computed("title_doc || ' ' || artist_doc || ' ' || tags_doc", persisted=True),
            nullable=True,
        ),
        sa.Column(
            "tsv",
            postgresql.TSVECTOR(),
            sa.Computed(
                "setweight(to_tsvector('simple'::regconfig, title_doc), 'A') || setweight(to_tsvector('simple'::regconfig, artist_doc), 'B') || setweight(to_tsvector('simple'::regconfig, tags_doc), 'B') || setweight(to_tsvector('simple'::regconfig, body_doc), 'D')",
                persisted=True,
            ),
            nullable=True,
        ),
        sa.Column("mood", sa.String(length=32), nullable=True),
        sa.Column("bpm", sa.Float(), nullable=True),
        sa.Column("boost", sa.Float(), server_default=sa.text("0"), nullable=False),
        sa.Column("source_updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "indexed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["track_id"], ["tracks.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("track_id"),
    )
    op.create_index(
        "ix_track_search_names_trgm",
        "track_search",
        ["names"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"names": "gin_trgm_ops"},
    )
    op.create_index(
        "ix_track_search_tsv", "track_search", ["tsv"], unique=False, postgresql_using="gin"
    )


def downgrade() -> None:
    # pg_trgm stays: other objects may use it, and dropping an extension is a DBA's call
    op.drop_index("ix_track_search_tsv", table_name="track_search", postgresql_using="gin")
    op.drop_index(
        "ix_track_search_names_trgm",
        table_name="track_search",
        postgresql_using="gin",
        postgresql_ops={"names": "gin_trgm_ops"},
    )
    op.drop_table("track_search")
