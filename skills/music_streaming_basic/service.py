"""Track rules: who sees what, edits by owners, deletion with its clean-up."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import Forbidden, NotFound
from core.events import emit
from skills.music_streaming_basic import repository as repo
from skills.music_streaming_basic import track_cache
from skills.music_streaming_basic.schemas import TrackDetail, TrackRead, TrackUpdate, track_data
from skills.user_profile import api as profiles

if TYPE_CHECKING:
    from core.kernel import Kernel

STREAM_URL_SECONDS = 900
log = logging.getLogger("soundhive.tracks")


@dataclass(frozen=True)
class Viewer:
    """Who is looking: a profile id (None when anonymous) and whether they moderate."""

    profile_id: uuid.UUID | None = None
    is_moderator: bool = False

    def owns(self, data: dict[str, Any]) -> bool:
        return self.profile_id is not None and str(self.profile_id) == data["owner_id"]


def track_not_found() -> NotFound:
    return NotFound("No track with that id.", code="TRACK_NOT_FOUND")


def can_view(data: dict[str, Any], viewer: Viewer) -> bool:
    """Owners and moderators see everything; others see ready, unhidden public or unlisted
    tracks of visible accounts."""
    if viewer.is_moderator or viewer.owns(data):
        return True
    return (
        data["owner_visible"]
        and not data["hidden"]
        and data["status"] == "ready"
        and data["visibility"] in ("public", "unlisted")
    )


async def load(
    kernel: Kernel, session: AsyncSession | None, track_id: uuid.UUID
) -> dict[str, Any] | None:
    """The cached JSON form of a track (plus ``owner_visible``) with its current counters, or
    None. A miss reads the row in one statement (in the session's transaction if one is open,
    else in autocommit: no BEGIN/COMMIT round trips) and seeds the cache (``track_cache``)."""
    cached = await track_cache.read(kernel.cache, track_id)
    if cached is not None:
        return cached
    if session is not None and session.in_transaction():
        row = await repo.get_for_cache(session, track_id)
    else:
        async with kernel.db.autocommit() as conn:
            row = await repo.get_for_cache(conn, track_id)
    if row is None:
        return None  # not cached: a missing row is looked up again
    data = track_data(row, list(row.tags or []))
    data["owner_visible"] = bool(row.owner_visible)
    await track_cache.seed(kernel.cache, track_id, data)
    return data


async def visible(
    kernel: Kernel, session: AsyncSession | None, track_id: uuid.UUID, viewer: Viewer
) -> dict[str, Any]:
    data = await load(kernel, session, track_id)
    if data is None or not can_view(data, viewer):
        raise track_not_found()
    return data


async def to_read(kernel: Kernel, data: dict[str, Any], *, detail: bool = False) -> TrackRead:
    """Add short-lived URLs to the cached form (URLs are never cached)."""
    storage = kernel.storage
    public = {
        k: v for k, v in data.items() if k not in ("object_key", "cover_key", "owner_visible")
    }
    cover_key = data.get("cover_key")
    public["cover_url"] = (
        await storage.presign_get(cover_key, expires_in=STREAM_URL_SECONDS) if cover_key else None
    )
    if not detail:
        return TrackRead.model_validate(public)
    stream_url = None
    if data["status"] == "ready":
        stream_url = await storage.presign_get(data["object_key"], expires_in=STREAM_URL_SECONDS)
    return TrackDetail.model_validate({**public, "stream_url": stream_url})


async def stream_url(
    kernel: Kernel, session: AsyncSession | None, track_id: uuid.UUID, viewer: Viewer
) -> str:
    data = await visible(kernel, session, track_id, viewer)
    if data["status"] != "ready":
        raise NotFound("The track is not ready to stream yet.", code="TRACK_NOT_READY")
    return str(await kernel.storage.presign_get(data["object_key"], expires_in=STREAM_URL_SECONDS))


def _editable(data: dict[str, Any] | None, viewer: Viewer) -> None:
    """404 when the caller cannot see the track, 403 when they can but do not own it."""
    if data is None or not can_view(data, viewer):
        raise track_not_found()
    if not viewer.owns(data):
        raise Forbidden("Only the track's owner can change it.", code="NOT_TRACK_OWNER")


async def update(
    kernel: Kernel, session: AsyncSession, track_id: uuid.UUID, viewer: Viewer, changes: TrackUpdate
) -> dict[str, Any]:
    _editable(await load(kernel, session, track_id), viewer)
    fields = changes.model_dump(exclude_unset=True)
    async with session.begin():
        row = await repo.get(session, track_id, lock=True)
        if row is None:
            raise track_not_found()
        tags = fields.pop("tags", None)
        for name, value in fields.items():
            if name == "title" and value is None:
                continue
            setattr(row, name, value)
        row.updated_at = datetime.now(UTC)
        if tags is not None:
            await repo.set_tags(session, track_id, tags)
        emit(
            session,
            "track.updated",
            {"track_id": str(track_id), "fields": sorted(changes.model_fields_set)},
        )
    await invalidate(kernel, track_id)
    data = await load(kernel, session, track_id)
    assert data is not None
    return data


async def delete(
    kernel: Kernel, session: AsyncSession, track_id: uuid.UUID, viewer: Viewer
) -> None:
    """Remove the row (likes, comments, playlist entries, history cascade) and its objects."""
    _editable(await load(kernel, session, track_id), viewer)
    await remove(kernel, session, track_id, actor_id=viewer.profile_id)


async def remove(
    kernel: Kernel, session: AsyncSession, track_id: uuid.UUID, *, actor_id: uuid.UUID | None
) -> bool:
    """Delete a track whoever asks (owner or moderation); objects go after the commit."""
    async with profiles.transaction(kernel, session):
        row = await repo.get(session, track_id, lock=True)
        if row is None:
            return False
        keys = [key for key in (row.object_key, row.cover_key) if key]
        await repo.delete_track(session, track_id)
        await profiles.adjust_counters(session, row.owner_id, tracks=-1)
        emit(
            session,
            "track.deleted",
            {
                "track_id": str(track_id),
                "owner_id": str(row.owner_id),
                "actor_id": str(actor_id) if actor_id else None,
                "object_keys": keys,
            },
        )
    await invalidate(kernel, track_id)
    for key in keys:
        try:
            await kernel.storage.delete(key)
        except Exception as exc:  # the orphan clean-up removes it later
            log.warning("could not delete object of track %s now: %s", track_id, type(exc).__name__)
    return True


async def list_for_owner(
    kernel: Kernel,
    session: AsyncSession,
    owner_id: uuid.UUID,
    viewer: Viewer,
    *,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[TrackRead]:
    everything = viewer.is_moderator or viewer.profile_id == owner_id
    if not everything and await profiles.get_profile(session, owner_id) is None:
        raise NotFound("No user with that id.", code="USER_NOT_FOUND")
    rows = await repo.list_by_owner(
        session, owner_id, everything=everything, after=after, limit=limit
    )
    return await reads(kernel, session, rows)


async def reads(kernel: Kernel, session: AsyncSession, rows: list[Any]) -> list[TrackRead]:
    """List items for track rows, tags loaded in one query."""
    tags = await repo.tags_for(session, [row.id for row in rows])
    return [await to_read(kernel, track_data(row, tags[row.id])) for row in rows]


async def list_items(kernel: Kernel, rows: Sequence[Row[Any]]) -> list[dict[str, Any]]:
    """``TrackRead``-shaped dicts for rows of :func:`repo.list_item_columns` (other columns,
    such as a cursor's sort key, are dropped): a signed, short-lived ``cover_url`` (never
    cached) and ``[]`` for a track without tags. The router's response model validates them
    once; building models here too would validate every item twice."""
    storage = kernel.storage
    fields = rows[0]._fields if rows else ()
    extra = [name for name in fields if name not in TrackRead.model_fields and name != "cover_key"]
    items = []
    for row in rows:
        item = dict(zip(fields, row, strict=True))  # a third of what Row._asdict() costs
        for name in extra:
            del item[name]
        cover_key = item.pop("cover_key")
        item["cover_url"] = (
            await storage.presign_get(cover_key, expires_in=STREAM_URL_SECONDS)
            if cover_key
            else None
        )
        if item["tags"] is None:
            item["tags"] = []
        items.append(item)
    return items


async def invalidate(kernel: Kernel, *track_ids: uuid.UUID) -> None:
    """After a metadata, visibility or status change commits: drop the cached entries."""
    await track_cache.drop(kernel.cache, *track_ids)


async def counters_changed(
    kernel: Kernel, track_id: uuid.UUID, *, likes: int = 0, comments: int = 0, plays: int = 0
) -> None:
    """After a counter change commits: apply the same deltas to the cached entry, which keeps
    its metadata (counter changes are the frequent writes; evicting on each made the next
    read or write reload the track)."""
    await track_cache.bump(kernel.cache, track_id, likes=likes, comments=comments, plays=plays)


async def invalidate_owner(kernel: Kernel, session: AsyncSession, owner_id: uuid.UUID) -> None:
    """Drop cached tracks of an owner whose visibility changed (ban, deletion)."""
    ids = await repo.ids_by_owner(session, owner_id)
    if ids:
        await invalidate(kernel, *ids)
