"""The public face of ``user-profile`` for other skills (declare ``requires=("user-profile",)``).

Dependencies for routes::

    from skills.user_profile.api import ActiveUser, CurrentUser

    @router.post("/tracks/{id}/like")
    async def like(id: UUID, user: ActiveUser, session: SessionDep) -> ...:
        ...  # user.id is the caller's profile id; banned callers never get here (403)

Functions take *your* session and run inside *your* transaction; they never commit. Writes
(:func:`adjust_counters`, :func:`set_banned`) remember which profiles changed, and the cache
must be invalidated only after your commit — use :func:`transaction`, which does both::

    async with transaction(kernel, session):
        await adjust_counters(session, followee_id, followers=+1)
        await adjust_counters(session, follower_id, following=+1)

or call ``await invalidate_pending(kernel, session)`` yourself right after committing.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends
from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession

from core.auth import CurrentPrincipal, Principal
from core.kernel import KernelDep
from skills.user_profile import repository as _repo
from skills.user_profile import service as _service
from skills.user_profile.errors import AccountDeleted, UserNotFound
from skills.user_profile.models import UserProfile
from skills.user_profile.schemas import ProfileRead
from skills.user_profile.service import Account

if TYPE_CHECKING:
    from core.kernel import Kernel

__all__ = [
    "Account",
    "AccountDeleted",
    "ActiveUser",
    "CurrentUser",
    "ProfileRead",
    "UserNotFound",
    "UserProfile",
    "active_user",
    "adjust_counters",
    "current_user",
    "get_profile",
    "get_profiles",
    "invalidate_pending",
    "invalidate_profile",
    "is_banned",
    "is_visible",
    "set_banned",
    "transaction",
    "visible_condition",
    "visible_profile_ids",
]


# -- FastAPI dependencies -------------------------------------------------------------
async def current_user(principal: CurrentPrincipal, kernel: KernelDep) -> Account:
    """The caller's profile, created on first use; 401 without a token, 403
    ``ACCOUNT_DELETED`` for a deleted account. Banned accounts pass (they may still read).

    An :class:`Account` (a read-only snapshot, usually from the cache, which every change
    invalidates after its commit). It does not use the request's session (a cache miss opens
    its own), so your service can ``async with session.begin()`` afterwards.
    """
    profile = await _service.current_account(kernel, principal)
    _service.check_usable(profile, writing=False)
    return profile


async def active_user(profile: Annotated[Account, Depends(current_user)]) -> Account:
    """As :func:`current_user`, but 403 ``ACCOUNT_BANNED`` for a banned account: use it on
    every endpoint that changes anything."""
    _service.check_usable(profile, writing=True)
    return profile


CurrentUser = Annotated[Account, Depends(current_user)]
ActiveUser = Annotated[Account, Depends(active_user)]


# -- reads ----------------------------------------------------------------------------
async def get_profile(
    session: AsyncSession, user_id: uuid.UUID, *, include_hidden: bool = False
) -> ProfileRead | None:
    """A profile others may see, else ``None``; ``include_hidden`` also returns banned and
    deleted ones (for moderation)."""
    row = await _repo.get_by_id(session, user_id)
    if row is None or not (include_hidden or is_visible(row)):
        return None
    return ProfileRead.model_validate(row)


async def get_profiles(
    session: AsyncSession, user_ids: Iterable[uuid.UUID], *, viewer: Principal | None = None
) -> dict[uuid.UUID, ProfileRead]:
    """Visible profiles by id, in one query (embed authors in lists without N+1)."""
    rows = await _repo.get_many(session, user_ids)
    return {row.id: ProfileRead.model_validate(row) for row in rows if is_visible(row, viewer)}


async def visible_profile_ids(
    session: AsyncSession, user_ids: Iterable[uuid.UUID], *, viewer: Principal | None = None
) -> set[uuid.UUID]:
    """Which of ``user_ids`` the viewer may see (moderators also see banned accounts)."""
    include_banned = viewer is not None and viewer.is_moderator
    return await _repo.visible_ids(session, user_ids, include_banned=include_banned)


def visible_condition(*, include_banned: bool = False) -> ColumnElement[bool]:
    """A SQL condition on ``UserProfile`` for joins: hide deleted (and banned) accounts."""
    return _repo.visible_condition(include_banned=include_banned)


def is_visible(profile: UserProfile, viewer: Principal | None = None) -> bool:
    """Whether ``viewer`` may see ``profile``: never if deleted; if banned, only moderators
    and the owner."""
    return _service.is_visible(profile, viewer)


async def is_banned(session: AsyncSession, user_id: uuid.UUID) -> bool:
    """``True`` if the account is banned (``False`` for an unknown id)."""
    return await _repo.is_banned(session, user_id)


# -- writes (inside the caller's transaction) -------------------------------------------
async def set_banned(session: AsyncSession, user_id: uuid.UUID, banned: bool) -> bool:
    """Ban or unban; emits ``user.banned`` / ``user.unbanned``. ``True`` if it changed,
    ``UserNotFound`` for an unknown id. Invalidate after commit (see the module docstring)."""
    return await _service.set_banned(session, user_id, banned)


async def adjust_counters(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    followers: int = 0,
    following: int = 0,
    tracks: int = 0,
) -> bool:
    """Atomically add the deltas (``x = GREATEST(x + d, 0)``: never below zero, no lost
    updates under concurrency). ``False`` if the profile does not exist. Invalidate after
    commit (see the module docstring)."""
    return await _service.adjust_counters(
        session, user_id, followers=followers, following=following, tracks=tracks
    )


async def invalidate_profile(kernel: Kernel, *user_ids: uuid.UUID) -> None:
    """Drop cached copies of these profiles. Call after your transaction committed."""
    await _service.invalidate(kernel, user_ids)


async def invalidate_pending(kernel: Kernel, session: AsyncSession) -> None:
    """Drop cached copies of every profile changed through ``session`` by this module."""
    await _service.invalidate_pending(kernel, session)


@asynccontextmanager
async def transaction(kernel: Kernel, session: AsyncSession) -> AsyncIterator[AsyncSession]:
    """``session.begin()`` that also invalidates changed profiles once the commit succeeded
    (and forgets them if the block failed and rolled back)."""
    try:
        async with session.begin():
            yield session
    except BaseException:
        session.info.pop(_service.DIRTY, None)
        raise
    await _service.invalidate_pending(kernel, session)
