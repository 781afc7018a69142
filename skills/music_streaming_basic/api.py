"""The public face of ``music-streaming-basic`` for skills that declare it in ``requires``.

Reads go through :func:`visible_track` / :func:`listable_condition` so private, hidden and
banned owners' tracks never leak into another skill's lists. Writes take *your* session inside
*your* transaction; after your commit call :func:`counters_changed` with the deltas you gave
:func:`adjust_track_counters`, or :func:`invalidate_track` when anything else changed.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends
from sqlalchemy import ColumnElement, Row, bindparam
from sqlalchemy.ext.asyncio import AsyncSession

from core.auth import MaybePrincipal
from core.events import emit
from core.kernel import KernelDep
from skills.music_streaming_basic import repository as _repo
from skills.music_streaming_basic import service as _service
from skills.music_streaming_basic.models import Tag, Track, TrackTag
from skills.music_streaming_basic.repository import TrackCounts
from skills.music_streaming_basic.schemas import (
    MOODS,
    ArtistName,
    Description,
    Mood,
    Tags,
    Title,
    TrackDetail,
    TrackRead,
    Visibility,
    normalize_tags,
)
from skills.music_streaming_basic.service import Viewer, track_not_found
from skills.user_profile import api as profiles

if TYPE_CHECKING:
    from core.kernel import Kernel

__all__ = [
    "MOODS",
    "ArtistName",
    "Description",
    "Mood",
    "Tag",
    "Tags",
    "Title",
    "Track",
    "TrackCounts",
    "TrackDetail",
    "TrackRead",
    "TrackTag",
    "TrackViewer",
    "Viewer",
    "Visibility",
    "adjust_counters_statement",
    "adjust_track_counters",
    "counters_changed",
    "create_track",
    "current_viewer",
    "invalidate_owner_tracks",
    "invalidate_track",
    "list_item_columns",
    "list_items",
    "listable_condition",
    "mark_failed",
    "mark_ready",
    "normalize_tags",
    "remove_track",
    "set_hidden",
    "track_detail",
    "track_not_found",
    "track_reads",
    "viewable_condition",
    "viewable_condition_param",
    "visible_track",
]


async def current_viewer(principal: MaybePrincipal, kernel: KernelDep) -> Viewer:
    """The viewer of a read endpoint: anonymous, or the caller's (provisioned) profile."""
    if principal is None:
        return Viewer()
    profile = await profiles.current_user(principal, kernel)
    return Viewer(profile_id=profile.id, is_moderator=principal.is_moderator)


TrackViewer = Annotated[Viewer, Depends(current_viewer)]


def list_item_columns() -> list[Any]:
    """Columns for one-statement list pages (feeds, search): select them, then render the rows
    with :func:`list_items` — the same fields as ``TrackRead`` without ORM instances."""
    return _repo.list_item_columns()


async def list_items(kernel: Kernel, rows: Sequence[Row[Any]]) -> list[dict[str, Any]]:
    """``TrackRead``-shaped dicts (cover URL signed) for rows of :func:`list_item_columns`."""
    return await _service.list_items(kernel, rows)


def listable_condition() -> ColumnElement[bool]:
    """SQL condition for tracks anyone may see in a list (ready, public, not hidden, owner
    neither banned nor deleted). Join ``UserProfile`` on ``Track.owner_id`` first."""
    return _repo.listable()


def viewable_condition(viewer: Viewer) -> ColumnElement[bool]:
    """SQL condition for tracks ``viewer`` may open (the rule of ``visible_track``): owners and
    moderators see their/all tracks, others ready unhidden public or unlisted tracks of visible
    owners. Join ``UserProfile`` on ``Track.owner_id`` first."""
    return _repo.viewable(viewer.profile_id, viewer.is_moderator)


def viewable_condition_param(*, moderator: bool, signed_in: bool) -> ColumnElement[bool]:
    """:func:`viewable_condition` for a statement you build once and execute many times: the
    viewer's profile id is the bind parameter ``viewer_id`` (pass it when ``signed_in``).
    Building these expressions on every request costs a few hundred microseconds of CPU."""
    return _repo.viewable(bindparam("viewer_id") if signed_in else None, moderator)


async def visible_track(
    kernel: Kernel, session: AsyncSession | None, track_id: uuid.UUID, viewer: Viewer
) -> dict[str, Any]:
    """The cached track if ``viewer`` may see it, else 404 ``TRACK_NOT_FOUND``. A miss reads
    in ``session``'s open transaction, else in autocommit (``session`` may be None)."""
    return await _service.visible(kernel, session, track_id, viewer)


async def track_detail(
    kernel: Kernel, session: AsyncSession, track_id: uuid.UUID, viewer: Viewer
) -> TrackRead:
    """The detail view (with ``stream_url``) of a track the viewer may see."""
    data = await _service.visible(kernel, session, track_id, viewer)
    return await _service.to_read(kernel, data, detail=True)


async def track_reads(kernel: Kernel, session: AsyncSession, rows: list[Track]) -> list[TrackRead]:
    """API items for rows you selected (with ``listable_condition``), tags in one query."""
    return await _service.reads(kernel, session, rows)


async def create_track(
    session: AsyncSession,
    *,
    owner_id: uuid.UUID,
    object_key: str,
    content_type: str,
    file_size: int,
    title: str,
    artist_name: str | None = None,
    description: str | None = None,
    tags: list[str] | None = None,
    mood: str | None = None,
    visibility: str = "public",
    track_id: uuid.UUID | None = None,
) -> Track:
    """Insert a track in ``processing`` state with its tags; counts it on the owner's profile."""
    track = Track(
        id=track_id or uuid.uuid4(),
        owner_id=owner_id,
        object_key=object_key,
        content_type=content_type,
        file_size=file_size,
        title=title,
        artist_name=artist_name,
        description=description,
        mood=mood,
        visibility=visibility,
    )
    session.add(track)
    await session.flush()
    await _repo.set_tags(session, track.id, normalize_tags(tags or []))
    await profiles.adjust_counters(session, owner_id, tracks=+1)
    return track


async def mark_ready(session: AsyncSession, track_id: uuid.UUID, analysis: dict[str, Any]) -> bool:
    """Store processing results and emit ``track.created``; ``False`` if not processing."""
    row = await _repo.get(session, track_id, lock=True)
    if row is None or row.status != "processing":
        return False
    for field in (
        "duration_ms",
        "sample_rate",
        "channels",
        "bitrate",
        "bpm",
        "loudness_lufs",
        "waveform",
        "format",
        "cover_key",
    ):
        if field in analysis:
            setattr(row, field, analysis[field])
    now = datetime.now(UTC)
    row.status, row.failure_reason, row.updated_at, row.ready_at = "ready", None, now, now
    emit(
        session,
        "track.created",
        {"track_id": str(row.id), "owner_id": str(row.owner_id), "visibility": row.visibility},
    )
    return True


async def mark_failed(session: AsyncSession, track_id: uuid.UUID, reason: str) -> bool:
    """Mark a processing track failed with a reason a person can read."""
    row = await _repo.get(session, track_id, lock=True)
    if row is None or row.status != "processing":
        return False
    row.status, row.failure_reason, row.updated_at = "failed", reason, datetime.now(UTC)
    emit(session, "track.failed", {"track_id": str(row.id), "owner_id": str(row.owner_id)})
    return True


async def adjust_track_counters(
    session: AsyncSession, track_id: uuid.UUID, *, likes: int = 0, comments: int = 0, plays: int = 0
) -> TrackCounts | None:
    """Atomically add to ``like_count`` / ``comment_count`` / ``play_count`` (never below 0),
    row-locking the track until your commit; the counters after the change (``UPDATE …
    RETURNING``), or None if the track does not exist. Call :func:`counters_changed` with the
    same deltas after your commit."""
    return await _repo.adjust_counters(session, track_id, like=likes, comment=comments, play=plays)


def adjust_counters_statement(*counters: str) -> Any:
    """:func:`adjust_track_counters` as a statement to embed in a single-statement write (a
    data-modifying CTE), so a hot write needs no transaction of several round trips.
    Parameters ``track_id`` and ``delta_<counter>`` for each of ``counters`` (``"like"``,
    ``"comment"``, ``"play"``); returns ``like_count``, ``comment_count``, ``play_count``.
    Narrow it with ``.where(…)``; call :func:`counters_changed` after it ran."""
    if not counters or set(counters) - set(_repo.COUNTERS):
        raise ValueError(f"counters must be some of {_repo.COUNTERS}, not {counters}")
    return _repo.adjust_statement(tuple(counters))


async def counters_changed(
    kernel: Kernel, track_id: uuid.UUID, *, likes: int = 0, comments: int = 0, plays: int = 0
) -> None:
    """After the commit of an :func:`adjust_track_counters` call: apply the same deltas to the
    cached track, which stays cached (use :func:`invalidate_track` for any other change)."""
    await _service.counters_changed(kernel, track_id, likes=likes, comments=comments, plays=plays)


async def set_hidden(session: AsyncSession, track_id: uuid.UUID, hidden: bool) -> bool:
    """Moderation: hide or unhide; ``False`` for an unknown track."""
    row = await _repo.get(session, track_id, lock=True)
    if row is None:
        return False
    row.is_hidden, row.updated_at = hidden, datetime.now(UTC)
    return True


async def remove_track(
    kernel: Kernel, session: AsyncSession, track_id: uuid.UUID, *, actor_id: uuid.UUID | None
) -> bool:
    """Delete a track (moderation); runs its own transaction on ``session``."""
    return await _service.remove(kernel, session, track_id, actor_id=actor_id)


async def invalidate_track(kernel: Kernel, *track_ids: uuid.UUID) -> None:
    """After a commit that changed anything but counters (metadata, status, visibility,
    hiding, deletion): drop the cached tracks."""
    await _service.invalidate(kernel, *track_ids)


async def invalidate_owner_tracks(
    kernel: Kernel, session: AsyncSession, owner_id: uuid.UUID
) -> None:
    await _service.invalidate_owner(kernel, session, owner_id)
