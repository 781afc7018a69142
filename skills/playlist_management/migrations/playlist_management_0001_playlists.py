"""playlist-management: playlists, their entries, and repair marks for cascaded deletions

Revision ID: playlist_management_0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "playlist_management_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("playlist-management",)
depends_on: str | Sequence[str] | None = (
    "core_0001",
    "user_profile_0001",
    "music_streaming_basic_0001",
)

# A track deletion removes its entries through the FK cascade, without the playlist lock the
# skill's own writes take, leaving a gap in positions. This statement-level trigger marks the
# playlists that lost entries whose track is gone (the skill's own removals keep their track
# and are not marked); the skill's `repair` actor renumbers them on `track.deleted`.
MARK_FUNCTION = """
CREATE FUNCTION playlist_tracks_mark_repair() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO playlist_repairs AS r (playlist_id)
    SELECT DISTINCT o.playlist_id
    FROM removed_entries AS o
    WHERE NOT EXISTS (SELECT 1 FROM tracks AS t WHERE t.id = o.track_id)
    ON CONFLICT (playlist_id)
    DO UPDATE SET generation = r.generation + 1, marked_at = now();
    RETURN NULL;
END
$$
"""
MARK_TRIGGER = """
CREATE TRIGGER trg_playlist_tracks_mark_repair
AFTER DELETE ON playlist_tracks
REFERENCING OLD TABLE AS removed_entries
FOR EACH STATEMENT EXECUTE FUNCTION playlist_tracks_mark_repair()
"""


def upgrade() -> None:
    op.create_table(
        "playlists",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("visibility", sa.String(length=16), server_default="public", nullable=False),
        sa.Column("forked_from_id", sa.Uuid(), nullable=True),
        sa.Column("track_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
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
        sa.CheckConstraint(
            "visibility IN ('public', 'unlisted', 'private')", name="ck_playlists_visibility"
        ),
        sa.CheckConstraint("track_count >= 0", name="ck_playlists_track_count"),
        sa.ForeignKeyConstraint(
            ["forked_from_id"],
            ["playlists.id"],
            ondelete="SET NULL",
            name="fk_playlists_forked_from_id",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["user_profiles.id"], ondelete="CASCADE", name="fk_playlists_owner_id"
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_playlists_forked_from_id", "playlists", ["forked_from_id"], unique=False)
    op.create_index(
        "ix_playlists_owner_created",
        "playlists",
        ["owner_id", sa.literal_column("created_at DESC"), sa.literal_column("id DESC")],
        unique=False,
    )
    op.create_table(
        "playlist_repairs",
        sa.Column("playlist_id", sa.Uuid(), nullable=False),
        sa.Column("generation", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column(
            "marked_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.PrimaryKeyConstraint("playlist_id"),
    )
    op.create_table(
        "playlist_tracks",
        sa.Column("playlist_id", sa.Uuid(), nullable=False),
        sa.Column("track_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column(
            "added_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.CheckConstraint("position >= 0", name="ck_playlist_tracks_position"),
        sa.ForeignKeyConstraint(
            ["playlist_id"],
            ["playlists.id"],
            ondelete="CASCADE",
            name="fk_playlist_tracks_playlist_id",
        ),
        sa.ForeignKeyConstraint(
            ["track_id"], ["tracks.id"], ondelete="CASCADE", name="fk_playlist_tracks_track_id"
        ),
        sa.PrimaryKeyConstraint("playlist_id", "track_id"),
        # Checked at commit, so shifting positions by one may pass through duplicates.
        sa.UniqueConstraint(
            "playlist_id",
            "position",
            deferrable=True,
            initially="DEFERRED",
            name="uq_playlist_tracks_position",
        ),
    )
    op.create_index("ix_playlist_tracks_track_id", "playlist_tracks", ["track_id"], unique=False)
    op.execute(MARK_FUNCTION)
    op.execute(MARK_TRIGGER)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS trg_playlist_tracks_mark_repair ON playlist_tracks")
    op.execute("DROP FUNCTION IF EXISTS playlist_tracks_mark_repair()")
    op.drop_index("ix_playlist_tracks_track_id", table_name="playlist_tracks")
    op.drop_table("playlist_tracks")
    op.drop_table("playlist_repairs")
    op.drop_index("ix_playlists_owner_created", table_name="playlists")
    op.drop_index("ix_playlists_forked_from_id", table_name="playlists")
    op.drop_table("playlists")
