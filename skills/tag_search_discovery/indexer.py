"""Keeps ``track_search`` in step with ``tracks``.

Three paths, one document builder (:func:`documents`):

* **events** — ``track.uploaded`` / ``track.created`` / ``track.updated`` re-index that track
  (an actor, so usually within a second of the commit);
* **sweep** — :func:`sync` re-indexes tracks whose row is missing or whose ``updated_at``
  differs from the indexed one (a periodic job): writes that emitted no event (SQL fixes,
  imports, a lost message) are caught within minutes;
* **bulk** — :func:`rebuild` streams every track through COPY and rebuilds the GIN indexes
  (``soundhive seed``, disaster recovery).

Deleted tracks leave by ``ON DELETE CASCADE``. Visibility is never indexed (queries filter it).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.schema import CreateIndex

from skills.music_streaming_basic.api import Tag, Track, TrackTag
from skills.tag_search_discovery import textnorm
from skills.tag_search_discovery.models import TrackSearch

if TYPE_CHECKING:
    from core.kernel import Kernel

T = Track.__table__.c  # type: ignore[attr-defined]
S = TrackSearch.__table__.c  # type: ignore[attr-defined]
DESCRIPTION_CHARS = 1000  # the start of a description says what it is about; the rest is noise
DOC_COLUMNS = ("title_doc", "artist_doc", "tags_doc", "body_doc")


def documents(
    title: str, artist_name: str | None, description: str | None, tags: Iterable[str]
) -> dict[str, str]:
    """The indexed text of one track (see :mod:`textnorm` for why it is armoured)."""
    return {
        "title_doc": textnorm.document(title),
        "artist_doc": textnorm.document(artist_name),
        "tags_doc": textnorm.document(" ".join(tags)),
        "body_doc": textnorm.document((description or "")[:DESCRIPTION_CHARS]),
    }


async def _tags(session: AsyncSession, ids: list[uuid.UUID]) -> dict[uuid.UUID, list[str]]:
    found: dict[uuid.UUID, list[str]] = {i: [] for i in ids}
    rows = await session.execute(
        select(TrackTag.track_id, Tag.name)
        .join(Tag, Tag.id == TrackTag.tag_id)  # type: ignore[arg-type]
        .where(TrackTag.track_id.in_(ids))  # type: ignore[attr-defined]
        .order_by(TrackTag.track_id, TrackTag.position)
    )
    for track_id, name in rows:
        found[track_id].append(name)
    return found


async def index_tracks(session: AsyncSession, track_ids: Iterable[uuid.UUID]) -> int:
    """Upsert the documents of these tracks inside the caller's transaction.

    The tracks are held ``FOR KEY SHARE`` so none can be deleted between reading it and
    writing its document (the foreign key would fail the batch).
    """
    ids = list(dict.fromkeys(track_ids))
    if not ids:
        return 0
    rows = (
        await session.execute(
            select(T.id, T.title, T.artist_name, T.description, T.mood, T.bpm, T.updated_at)
            .where(T.id.in_(ids))
            .with_for_update(read=True, key_share=True)
        )
    ).all()
    gone = set(ids) - {row.id for row in rows}
    if gone:
        await session.execute(delete(TrackSearch).where(S.track_id.in_(gone)))
    if not rows:
        return 0
    tags = await _tags(session, [row.id for row in rows])
    values = [
        {
            "track_id": row.id,
            "source_updated_at": row.updated_at,
            "mood": row.mood,
            "bpm": row.bpm,
            **documents(row.title, row.artist_name, row.description, tags[row.id]),
        }
        for row in rows
    ]
    statement = insert(TrackSearch).values(values)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[S.track_id],
            set_={
                **{name: statement.excluded[name] for name in (*DOC_COLUMNS, "mood", "bpm")},
                "source_updated_at": statement.excluded.source_updated_at,
                "indexed_at": func.now(),
            },
        )
    )
    return len(rows)


def part_bounds(part: int, parts: int) -> tuple[uuid.UUID, uuid.UUID | None]:
    """The id range ``[low, high)`` of one of ``parts`` equal slices of the UUID space
    (PostgreSQL orders uuids as their big-endian 128-bit value, like Python's ``int``)."""
    low = uuid.UUID(int=part * 2**128 // parts)
    return low, None if part == parts - 1 else uuid.UUID(int=(part + 1) * 2**128 // parts)


async def sync(kernel: Kernel, *, part: tuple[int, int] | None = None, batch: int = 1000) -> int:
    """Index every track whose document is missing or stale; returns how many were written.

    ``part=(i, n)`` limits the sweep to the i-th of n slices of the id space, so a periodic
    job can spread one full pass over several runs. Walks ``tracks`` in id order (a merge of
    two primary keys, one short transaction per batch), so a large backlog never becomes one
    long transaction.
    """
    low, high = part_bounds(*part) if part else (None, None)
    written, after = 0, None
    while True:
        async with kernel.db.session() as session, session.begin():
            query = (
                select(T.id)
                .outerjoin(TrackSearch, S.track_id == T.id)  # type: ignore[arg-type]
                .where(or_(S.track_id.is_(None), S.source_updated_at != T.updated_at))
            )
            if low is not None:
                query = query.where(T.id >= low)
            if high is not None:
                query = query.where(T.id < high)
            if after is not None:
                query = query.where(T.id > after)
            ids = list((await session.scalars(query.order_by(T.id).limit(batch))).all())
            written += await index_tracks(session, ids)
            if len(ids) < batch:
                return written
            after = ids[-1]


SOURCE_SQL = """
SELECT t.id, t.title, t.artist_name, left(t.description, %(chars)s), t.mood, t.bpm,
       t.trending_score, t.updated_at,
       coalesce((SELECT array_agg(g.name ORDER BY tt.position)
                 FROM track_tags tt JOIN tags g ON g.id = tt.tag_id
                 WHERE tt.track_id = t.id), '{}')
FROM tracks t
"""


def rebuild(conninfo: str, *, progress: Callable[[int], Any] | None = None) -> int:
    """Rewrite every document with COPY, then build the GIN indexes once, side by side (bulk
    loads into a GIN index are many times slower than building it afterwards). Synchronous,
    for the CLI; searches see an emptied table until it finishes."""
    import psycopg

    table = TrackSearch.__table__  # type: ignore[attr-defined]
    columns = ("track_id", *DOC_COLUMNS, "mood", "bpm", "boost", "source_updated_at")
    total = 0
    with psycopg.connect(conninfo) as conn:
        for index in table.indexes:
            conn.execute(f'DROP INDEX IF EXISTS "{index.name}"')  # type: ignore[arg-type]
        conn.execute("TRUNCATE track_search")
        with conn.cursor(name="search_rebuild_source") as source, conn.cursor() as sink:
            source.itersize = 5000
            source.execute(SOURCE_SQL, {"chars": DESCRIPTION_CHARS})
            while rows := source.fetchmany(5000):
                with sink.copy(f"COPY track_search ({', '.join(columns)}) FROM STDIN") as copy:
                    for track_id, title, artist, text, mood, bpm, boost, at, tags in rows:
                        docs = documents(title, artist, text, tags)
                        copy.write_row((track_id, *docs.values(), mood, bpm, boost, at))
                total += len(rows)
                if progress is not None:
                    progress(len(rows))
    with ThreadPoolExecutor(max_workers=len(table.indexes)) as pool:
        list(pool.map(lambda index: _create_index(conninfo, index), table.indexes))
    return total


def _create_index(conninfo: str, index: Any) -> None:
    import psycopg

    statement = str(CreateIndex(index).compile(dialect=postgresql.dialect()))
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '256MB'")
        conn.execute(statement)  # type: ignore[arg-type]
