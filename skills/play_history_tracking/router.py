"""``POST /tracks/{id}/play`` and ``GET /users/me/history``: thin, rules live in the service."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Request

from core.auth import MaybePrincipal
from core.db import SessionDep
from core.errors import problem_doc
from core.kernel import kernel_of
from core.pagination import Cursor, Limit
from core.ratelimit import enforce
from skills.play_history_tracking import service
from skills.play_history_tracking.schemas import HistoryPage, PlayReport, PlayResult
from skills.play_history_tracking.service import Listener
from skills.user_profile.api import CurrentUser, active_user, current_user

router = APIRouter(tags=["play-history-tracking"])


UNAUTHORIZED = problem_doc(401, "UNAUTHORIZED", "Unauthorized", "Authentication required.")
BANNED = problem_doc(
    403, "ACCOUNT_BANNED", "Account banned", "This account is banned and cannot make changes."
)
NOT_FOUND = {
    **problem_doc(404, "TRACK_NOT_FOUND", "Not found", "No track with that id."),
    "description": "No such track or not visible to the caller (TRACK_NOT_FOUND); the "
    "owner's track is still processing (TRACK_NOT_READY)",
}
LIMITED = problem_doc(
    429, "RATE_LIMITED", "Too many requests", "Too many 'plays' requests: at most 120 per 60 s."
)


async def play_rate_limit(request: Request) -> None:
    """Plays have their own budget (``SOUNDHIVE_PLAYS_RATE_LIMIT``), checked before any work."""
    await enforce(
        request, "plays", service.settings_of(kernel_of(request)).rate_limit, exact=False
    )


async def listener(request: Request, principal: MaybePrincipal) -> Listener:
    """Anonymous, or an active account: a banned one gets 403 ``ACCOUNT_BANNED``, a bad
    token 401 (never silently anonymous)."""
    if principal is None:
        return Listener(client_ip=request.client.host if request.client else "unknown")
    profile = await active_user(await current_user(principal, kernel_of(request)))
    return Listener(user_id=profile.id, is_moderator=principal.is_moderator)


@router.post(
    "/tracks/{track_id}/play",
    response_model=PlayResult,
    summary="Report a play (anonymous allowed)",
    dependencies=[Depends(play_rate_limit)],
    responses={401: UNAUTHORIZED, 403: BANNED, 404: NOT_FOUND, 429: LIMITED},
)
async def play(
    track_id: Annotated[uuid.UUID, Path(description="The track played.")],
    request: Request,
    who: Annotated[Listener, Depends(listener)],
    report: Annotated[PlayReport | None, Body()] = None,
) -> PlayResult:
    """Counts toward ``play_count`` when ``played_ms`` is absent or at least min(50 % of the
    duration, 240 s) — once per listener and track per window of that length. Signed-in
    plays go to the caller's history; anonymous plays are stored in nobody's history."""
    played_ms = report.played_ms if report else None
    return await service.record_play(kernel_of(request), track_id, who, played_ms)


@router.get(
    "/users/me/history",
    response_model=HistoryPage,
    summary="The caller's listening history, newest first",
    responses={401: UNAUTHORIZED},
)
async def my_history(
    user: CurrentUser,
    request: Request,
    session: SessionDep,
    principal: MaybePrincipal,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> HistoryPage:
    """Every play of the caller (counted or not) of tracks they may still see."""
    who = Listener(user_id=user.id, is_moderator=bool(principal and principal.is_moderator))
    return await service.history(kernel_of(request), session, who, cursor=cursor, limit=limit)
