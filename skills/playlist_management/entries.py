"""Adding, removing and moving entries, and the repair that closes gaps a track deletion left.

Every change locks the playlist row first, so changes to one playlist run one after another
and positions stay exactly 0 … n-1. A track deletion removes entries by FK cascade without
that lock; the delete trigger marks the playlist and :func:`repair_marked` (on
``track.deleted``, and every few minutes) renumbers it. Writes also compact a playlist they
find with a gap before applying their change, so an edit never builds on a hole.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import Conflict
from core.events import emit
from skills.music_streaming_basic.api import (
    Viewer,
    track_not_found,
    track_reads,
    visible_track,
)
from skills.playlist_management import repository as repo
from skills.playlist_management.errors import (
    TRACK_FK,
    PlaylistFull,
    TrackNotInPlaylist,
    bad_position,
    violated,
)
from skills.playlist_management.models import utcnow
from skills.playlist_management.schemas import EntryAdd, PlaylistEntry
from skills.playlist_management.service import locked, writable

if TYPE_CHECKING:
    from core.kernel import Kernel

REPAIR_BATCH = 500


async def compact(session: AsyncSession, playlist_id: uuid.UUID) -> int:
    """Renumber if the positions have a gap (only a cascade leaves one); the entry count."""
    count, top = await repo.shape(session, playlist_id)
    if top != count - 1:
        await repo.renumber(session, playlist_id)
    return count


async def add(
    kernel: Kernel,
    session: AsyncSession,
    playlist_id: uuid.UUID,
    viewer: Viewer,
    body: EntryAdd,
    *,
    max_tracks: int,
) -> PlaylistEntry:
    """Insert at ``position`` (default: last), shifting later entries down by one."""
    await writable(session, playlist_id, viewer)
    await visible_track(kernel, session, body.track_id, viewer)  # 404 TRACK_NOT_FOUND
    try:
        async with session.begin():
            playlist = await locked(session, playlist_id)
            count = await compact(session, playlist_id)
            if await repo.position_of(session, playlist_id, body.track_id) is not None:
                raise Conflict("The track is already in this playlist.")
            if count >= max_tracks:
                raise PlaylistFull(f"A playlist holds at most {max_tracks} tracks.")
            position = count if body.position is None else body.position
            if position > count:
                raise bad_position(position, count)
            await repo.shift(session, playlist_id, start=position, by=1)
            await repo.insert_entry(session, playlist_id, body.track_id, position)
            await repo.set_count(session, playlist_id, count + 1, utcnow())
            emit(
                session,
                "playlist.track_added",
                {
                    "playlist_id": str(playlist_id),
                    "owner_id": str(playlist.owner_id),
                    "track_id": str(body.track_id),
                    "position": position,
                },
            )
    except IntegrityError as exc:
        if violated(exc) == TRACK_FK:  # deleted after the visibility check
            raise track_not_found() from exc
        raise
    return await entry(kernel, session, playlist_id, body.track_id, viewer)


async def entry(
    kernel: Kernel,
    session: AsyncSession,
    playlist_id: uuid.UUID,
    track_id: uuid.UUID,
    viewer: Viewer,
) -> PlaylistEntry:
    async with session.begin():
        rows = await repo.visible_entries(session, playlist_id, viewer, track_id=track_id)
        if not rows:
            raise track_not_found()
        (track,) = await track_reads(kernel, session, [rows[0][2]])
    return PlaylistEntry(position=rows[0][0], added_at=rows[0][1], track=track)


async def remove(
    session: AsyncSession, playlist_id: uuid.UUID, viewer: Viewer, track_id: uuid.UUID
) -> None:
    """Delete the entry and close the gap it leaves."""
    await writable(session, playlist_id, viewer)
    async with session.begin():
        await locked(session, playlist_id)
        count = await compact(session, playlist_id)
        position = await repo.delete_entry(session, playlist_id, track_id)
        if position is None:
            raise TrackNotInPlaylist("That track is not in this playlist.")
        await repo.shift(session, playlist_id, start=position + 1, by=-1)
        await repo.set_count(session, playlist_id, count - 1, utcnow())


async def move(
    session: AsyncSession,
    playlist_id: uuid.UUID,
    viewer: Viewer,
    track_id: uuid.UUID,
    position: int,
) -> None:
    """Put the entry at ``position`` (0 … count-1); the entries between slide by one."""
    await writable(session, playlist_id, viewer)
    async with session.begin():
        await locked(session, playlist_id)
        count = await compact(session, playlist_id)
        old = await repo.position_of(session, playlist_id, track_id)
        if old is None:
            raise TrackNotInPlaylist("That track is not in this playlist.")
        if position >= count:
            raise bad_position(position, count - 1)
        if position != old:
            await repo.move_entry(session, playlist_id, track_id, old, position)
            await repo.set_count(session, playlist_id, count, utcnow())


# -- repair ---------------------------------------------------------------------------------
async def _fix(session: AsyncSession, playlist_id: uuid.UUID) -> bool:
    """Inside a transaction: lock, renumber, recount; False if the playlist is gone."""
    playlist = await repo.lock(session, playlist_id)
    if playlist is None:
        return False
    count = await compact(session, playlist_id)
    if playlist.track_count != count:
        await repo.set_count(session, playlist_id, count, utcnow())
    return True


async def repair_marked(session: AsyncSession, *, batch: int = REPAIR_BATCH) -> int:
    """Repair the playlists the delete trigger marked; returns how many marks were handled.

    The mark is cleared in the repair's own transaction, after the renumbering, and only for
    the generation seen: a cascade that marks the playlist again meanwhile keeps its mark.
    """
    async with session.begin():
        marks = await repo.marks(session, batch)
    for playlist_id, generation in marks:
        async with session.begin():
            await _fix(session, playlist_id)
            await repo.clear_mark(session, playlist_id, generation)
    return len(marks)


async def audit(session: AsyncSession, *, batch: int = REPAIR_BATCH) -> int:
    """Find and repair playlists that disagree with their entries whatever the cause (manual
    SQL, a lost mark); returns how many were repaired."""
    async with session.begin():
        broken = await repo.inconsistent(session, batch)
    for playlist_id in broken:
        async with session.begin():
            await _fix(session, playlist_id)
    return len(broken)
