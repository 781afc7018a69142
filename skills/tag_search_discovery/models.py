"""``track_search``: the search document of each track, owned by this skill.

The text columns hold :mod:`textnorm` output (folded, armoured), written from Python so the
same code normalises documents and queries. PostgreSQL derives the rest: ``names`` (title,
artist and tags, for trigram substring and typo matching) and ``tsv`` (full-text, weighted
title A, artist and tags B, description D). ``mood`` and ``bpm`` are copied (they change with
the metadata, so with the document) so relevance ranking and its filters need nothing but this
table; ``boost`` mirrors the trending score. Visibility is *not* copied: every query joins
``tracks`` and ``user_profiles`` so hiding, bans and privacy apply at once.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Column,
    Computed,
    DateTime,
    Float,
    ForeignKey,
    Index,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlmodel import Field, SQLModel

NAMES_SQL = "title_doc || ' ' || artist_doc || ' ' || tags_doc"
TSV_SQL = (
    "setweight(to_tsvector('simple'::regconfig, title_doc), 'A') || "
    "setweight(to_tsvector('simple'::regconfig, artist_doc), 'B') || "
    "setweight(to_tsvector('simple'::regconfig, tags_doc), 'B') || "
    "setweight(to_tsvector('simple'::regconfig, body_doc), 'D')"
)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _doc() -> Any:
    return Field(default="", sa_column=Column(Text, nullable=False, server_default=""))


class TrackSearch(SQLModel, table=True):
    """One row per track (any status; lists filter at query time), deleted with the track."""

    __tablename__ = "track_search"
    __table_args__ = (
        Index(
            "ix_track_search_names_trgm",
            "names",
            postgresql_using="gin",
            postgresql_ops={"names": "gin_trgm_ops"},
        ),
        Index("ix_track_search_tsv", "tsv", postgresql_using="gin"),
    )

    track_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("tracks.id", ondelete="CASCADE"), primary_key=True)
    )
    title_doc: str = _doc()
    artist_doc: str = _doc()
    tags_doc: str = _doc()
    body_doc: str = _doc()
    names: str | None = Field(
        default=None, sa_column=Column(Text, Computed(NAMES_SQL, persisted=True))
    )
    tsv: Any = Field(default=None, sa_column=Column(TSVECTOR, Computed(TSV_SQL, persisted=True)))
    mood: str | None = Field(default=None, sa_column=Column(String(32), nullable=True))
    bpm: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    boost: float = Field(
        default=0.0,
        sa_column=Column(Float, nullable=False, server_default=text("0")),
        description="the track's trending score, mirrored by the trending job (ranking nudge)",
    )
    source_updated_at: datetime = Field(
        sa_column=Column(DateTime(timezone=True), nullable=False),
        description="tracks.updated_at of the version indexed (staleness check of the sweep)",
    )
    indexed_at: datetime = Field(
        default_factory=utcnow,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now()),
    )
