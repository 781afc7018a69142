"""Playlist rules: who sees and changes what, the detail view, lists and forks.

Each write runs one transaction. Ownership is checked on a plain read first (404 when the
caller may not see the playlist, 403 when they may but do not own it), then the playlist row
is locked for the change itself.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import Conflict, Forbidden
from core.events import emit
from skills.music_streaming_basic.api import Viewer, track_reads
from skills.playlist_management import repository as repo
from skills.playlist_management.errors import (
    SOURCE_FK,
    TRACK_FK,
    NotPlaylistOwner,
    PlaylistFull,
    PlaylistNotFound,
    violated,
)
from skills.playlist_management.models import Playlist, utcnow
from skills.playlist_management.schemas import (
    ForkRequest,
    PlaylistCreate,
    PlaylistDetail,
    PlaylistEntry,
    PlaylistRead,
    PlaylistUpdate,
)
from skills.user_profile import api as profiles

if TYPE_CHECKING:
    from core.kernel import Kernel


@dataclass(frozen=True)
class Found:
    playlist: Playlist
    owner_banned: bool
    owner_deleted: bool


def not_found() -> PlaylistNotFound:
    return PlaylistNotFound("No playlist with that id.")


def owns(playlist: Playlist, viewer: Viewer) -> bool:
    return viewer.profile_id is not None and viewer.profile_id == playlist.owner_id


def can_view(found: Found, viewer: Viewer) -> bool:
    """Owners and moderators see any playlist of a live account; others public or unlisted
    ones (unlisted = by link) of accounts neither banned nor deleted."""
    if found.owner_deleted:
        return False
    if owns(found.playlist, viewer) or viewer.is_moderator:
        return True
    return not found.owner_banned and found.playlist.visibility in ("public", "unlisted")


async def visible(session: AsyncSession, playlist_id: uuid.UUID, viewer: Viewer) -> Found:
    """The playlist if the viewer may see it, else 404 (no transaction left open)."""
    async with session.begin():
        row = await repo.get_with_owner(session, playlist_id)
    found = None if row is None else Found(*row)
    if found is None or not can_view(found, viewer):
        raise not_found()
    return found


async def writable(session: AsyncSession, playlist_id: uuid.UUID, viewer: Viewer) -> Playlist:
    """404 when the caller cannot see the playlist, 403 when they can but do not own it."""
    found = await visible(session, playlist_id, viewer)
    if not owns(found.playlist, viewer):
        raise NotPlaylistOwner("Only the playlist's owner can change it.")
    return found.playlist


async def locked(session: AsyncSession, playlist_id: uuid.UUID) -> Playlist:
    """The row under lock inside the caller's transaction; 404 if it was deleted meanwhile."""
    row = await repo.lock(session, playlist_id)
    if row is None:
        raise not_found()
    return row


# -- reads ----------------------------------------------------------------------------------
async def detail(
    kernel: Kernel, session: AsyncSession, playlist_id: uuid.UUID, viewer: Viewer
) -> PlaylistDetail:
    """The playlist and the entries the viewer may see, from one snapshot (REPEATABLE READ),
    so ``track_count`` and positions agree even while the owner edits."""
    async with session.begin():
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        row = await repo.get_with_owner(session, playlist_id)
        found = None if row is None else Found(*row)
        if found is None or not can_view(found, viewer):
            raise not_found()
        rows = await repo.visible_entries(session, playlist_id, viewer)
        tracks = await track_reads(kernel, session, [r[2] for r in rows])
    entries = [
        PlaylistEntry(position=r[0], added_at=r[1], track=t)
        for r, t in zip(rows, tracks, strict=True)
    ]
    base = PlaylistRead.model_validate(found.playlist).model_dump()
    return PlaylistDetail(**base, tracks=entries)


async def list_for_owner(
    session: AsyncSession,
    owner_id: uuid.UUID,
    viewer: Viewer,
    *,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Playlist]:
    """Newest first; the owner (and moderators) see every visibility, others public only."""
    everything = viewer.is_moderator or viewer.profile_id == owner_id
    async with session.begin():
        if not everything and await profiles.get_profile(session, owner_id) is None:
            raise profiles.UserNotFound(f"No user with id {owner_id}.")
        return await repo.list_by_owner(
            session, owner_id, everything=everything, after=after, limit=limit
        )


# -- writes ---------------------------------------------------------------------------------
def _payload(playlist: Playlist, **extra: Any) -> dict[str, Any]:
    return {"playlist_id": str(playlist.id), "owner_id": str(playlist.owner_id), **extra}


async def create(session: AsyncSession, viewer: Viewer, body: PlaylistCreate) -> Playlist:
    assert viewer.profile_id is not None
    async with session.begin():
        playlist = Playlist(owner_id=viewer.profile_id, **body.model_dump())
        session.add(playlist)
        await session.flush()
        emit(session, "playlist.created", _payload(playlist, visibility=playlist.visibility))
    return playlist


async def update(
    session: AsyncSession, playlist_id: uuid.UUID, viewer: Viewer, changes: PlaylistUpdate
) -> Playlist:
    await writable(session, playlist_id, viewer)
    fields = changes.model_dump(exclude_unset=True)
    async with session.begin():
        playlist = await locked(session, playlist_id)
        changed = sorted(name for name, value in fields.items() if getattr(playlist, name) != value)
        if changed:
            for name in changed:
                setattr(playlist, name, fields[name])
            playlist.updated_at = utcnow()
            emit(session, "playlist.updated", _payload(playlist, changed=changed))
    return playlist


async def delete(session: AsyncSession, playlist_id: uuid.UUID, viewer: Viewer) -> None:
    """Remove the playlist; its entries go by cascade, forks keep existing (their
    ``forked_from_id`` becomes null)."""
    await writable(session, playlist_id, viewer)
    await remove(session, playlist_id)


async def remove(session: AsyncSession, playlist_id: uuid.UUID) -> bool:
    """Delete whoever asks (owner, or moderation through api.py); False if already gone."""
    async with session.begin():
        playlist = await repo.lock(session, playlist_id)
        if playlist is None:
            return False
        await repo.delete_playlist(session, playlist_id)
        emit(session, "playlist.deleted", _payload(playlist))
    return True


async def fork(
    session: AsyncSession,
    playlist_id: uuid.UUID,
    viewer: Viewer,
    body: ForkRequest | None,
    *,
    max_tracks: int,
) -> Playlist:
    """A copy owned by the caller: title, description, visibility (unless overridden) and
    the tracks the caller may see, in order, renumbered from 0."""
    assert viewer.profile_id is not None
    source = (await visible(session, playlist_id, viewer)).playlist
    if source.visibility == "private" and not owns(source, viewer):
        raise Forbidden("A private playlist can only be forked by its owner.", code="FORBIDDEN")
    overrides = body.model_dump(exclude_unset=True) if body else {}
    try:
        async with session.begin():
            rows = await repo.visible_entries(session, playlist_id, viewer)
            if len(rows) > max_tracks:
                raise PlaylistFull(f"A playlist holds at most {max_tracks} tracks.")
            copy = Playlist(
                owner_id=viewer.profile_id,
                title=overrides.get("title") or source.title,
                description=overrides.get("description", source.description),
                visibility=overrides.get("visibility") or source.visibility,
                forked_from_id=source.id,
                track_count=len(rows),
            )
            session.add(copy)
            await session.flush()
            await repo.copy_entries(session, copy.id, [r[2].id for r in rows])
            emit(
                session,
                "playlist.forked",
                _payload(copy, source_id=str(source.id), source_owner_id=str(source.owner_id)),
            )
    except IntegrityError as exc:
        if violated(exc) == SOURCE_FK:  # the source was deleted meanwhile
            raise not_found() from exc
        if violated(exc) == TRACK_FK:  # one of its tracks was: a retry copies the rest
            raise Conflict("The playlist changed while it was being copied; retry.") from exc
        raise
    return copy
