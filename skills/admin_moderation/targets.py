"""What a report or an action points at, looked up through the other skills' public modules.

Two views: a reporter may only report what they can see (anything else is 404, so reports
cannot probe for hidden content), and a moderator sees every target that exists.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.auth import Principal
from core.errors import NotFound
from skills.admin_moderation import repository as repo
from skills.interaction_like_comment import api as comments
from skills.music_streaming_basic import api as tracks
from skills.user_profile import api as profiles

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from core.kernel import Kernel

MODERATOR = tracks.Viewer(is_moderator=True)


@dataclass(frozen=True)
class Target:
    """A reportable object, the account answerable for it, whether it is already hidden
    (tracks, comments) or banned (users), and for a comment its track."""

    type: str
    id: uuid.UUID
    owner_id: uuid.UUID
    hidden: bool = False
    track_id: uuid.UUID | None = None


def not_found(target_type: str) -> NotFound:
    return NotFound(f"No {target_type} with that id.", code=f"{target_type.upper()}_NOT_FOUND")


async def find(
    kernel: Kernel, session: AsyncSession, target_type: str, target_id: uuid.UUID
) -> Target:
    """The target as a moderator sees it; 404 ``<TYPE>_NOT_FOUND`` if it does not exist."""
    return await reportable(kernel, session, target_type, target_id, MODERATOR, None)


async def reportable(
    kernel: Kernel,
    session: AsyncSession,
    target_type: str,
    target_id: uuid.UUID,
    viewer: tracks.Viewer,
    principal: Principal | None,
) -> Target:
    """The target if ``viewer`` may see it, else 404 with the target's code."""
    if target_type == "track":
        try:
            data = await tracks.visible_track(kernel, session, target_id, viewer)
        except NotFound:
            raise not_found("track") from None
        return Target("track", target_id, uuid.UUID(data["owner_id"]), bool(data["hidden"]))
    if target_type == "comment":
        return await _comment(kernel, session, target_id, viewer, principal)
    if target_type == "user":
        return await _user(session, target_id, viewer, principal)
    return await _playlist(session, target_id, viewer, principal)


async def _comment(
    kernel: Kernel,
    session: AsyncSession,
    comment_id: uuid.UUID,
    viewer: tracks.Viewer,
    principal: Principal | None,
) -> Target:
    """interaction-like-comment's rule: the track must be visible; hidden comments and those
    of banned or deleted authors only to their author and moderators."""
    comment = await comments.get_comment(session, comment_id)
    if comment is None:
        raise not_found("comment")
    try:
        await tracks.visible_track(kernel, session, comment.track_id, viewer)
    except NotFound:
        raise not_found("comment") from None
    if not (viewer.is_moderator or viewer.profile_id == comment.author_id):
        seen = await profiles.visible_profile_ids(session, [comment.author_id], viewer=principal)
        if comment.hidden or comment.author_id not in seen:
            raise not_found("comment")
    return Target("comment", comment_id, comment.author_id, comment.hidden, comment.track_id)


async def _user(
    session: AsyncSession, user_id: uuid.UUID, viewer: tracks.Viewer, principal: Principal | None
) -> Target:
    if viewer.is_moderator:
        if await profiles.get_profile(session, user_id, include_hidden=True) is None:
            raise not_found("user")
    elif user_id not in await profiles.visible_profile_ids(session, [user_id], viewer=principal):
        raise not_found("user")
    return Target("user", user_id, user_id, await profiles.is_banned(session, user_id))


async def _playlist(
    session: AsyncSession,
    playlist_id: uuid.UUID,
    viewer: tracks.Viewer,
    principal: Principal | None,
) -> Target:
    """playlist-management's rule: public and unlisted playlists of visible accounts; private
    ones to their owner and moderators."""
    row = await repo.playlist(session, playlist_id)
    if row is None:
        raise not_found("playlist")
    if not viewer.is_moderator and viewer.profile_id != row.owner_id:
        seen = await profiles.visible_profile_ids(session, [row.owner_id], viewer=principal)
        if row.owner_id not in seen or row.visibility == "private":
            raise not_found("playlist")
    return Target("playlist", playlist_id, row.owner_id)
