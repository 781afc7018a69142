"""Moderation routes (SPEC §5 "Moderation"); rules live in the service.

``POST /reports`` is for every active account. Everything under ``/admin`` sits behind a
router-level ``require_moderator`` dependency, so no route can forget the role check: 401
without a token, 403 without the ``admin`` or ``moderator`` role.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request, Response

from core.auth import ModeratorPrincipal, require_moderator
from core.db import SessionDep
from core.errors import RateLimited, ValidationFailed, problem_doc
from core.kernel import KernelDep
from core.pagination import Cursor, Limit, Page, decode_cursor, encode_cursor
from core.ratelimit import hit
from core.settings import parse_rate
from skills.admin_moderation import repository as repo
from skills.admin_moderation import service
from skills.admin_moderation.schemas import (
    AuditEntryRead,
    ModerationNote,
    Note,
    ReportCreate,
    ReportRead,
    Resolution,
    Resolve,
    Status,
    TargetType,
)
from skills.user_profile.api import ActiveUser

if TYPE_CHECKING:
    from core.kernel import Kernel

SKILL = "admin-moderation"
TAG = "admin-moderation"
Responses = dict[int | str, dict[str, Any]]


AUTH: Responses = {
    401: problem_doc(401, "UNAUTHORIZED", "Unauthorized", "Authentication required."),
    403: problem_doc(
        403, "FORBIDDEN", "Forbidden", "This action needs the 'admin' or 'moderator' role."
    ),
}
BANNED = problem_doc(403, "ACCOUNT_BANNED", "Account banned", "This account is banned.")
REPORT_404 = problem_doc(404, "REPORT_NOT_FOUND", "Not found", "No report with that id.")
TRACK_404 = problem_doc(404, "TRACK_NOT_FOUND", "Not found", "No track with that id.")
COMMENT_404 = problem_doc(404, "COMMENT_NOT_FOUND", "Not found", "No comment with that id.")
USER_404 = problem_doc(404, "USER_NOT_FOUND", "Not found", "No user with that id.")
PLAYLIST_404 = problem_doc(404, "PLAYLIST_NOT_FOUND", "Not found", "No playlist with that id.")
BAD_CURSOR = problem_doc(422, "INVALID_CURSOR", "Validation failed", "The cursor is not valid.")


async def report_budget(user: ActiveUser, kernel: KernelDep) -> None:
    """Count every report attempt (repeats and invalid ones too, so 404s cannot be used to
    probe for hidden content) against the *account's* budget: unlike ``enforce``, which keys
    on the bearer token, a fresh token does not buy a fresh budget. Fails open without Redis."""
    limit, window = parse_rate(kernel.skill_settings(SKILL).report_rate)
    decision = await hit(kernel.cache, f"reports:user:{user.id}", limit, window)
    if decision is not None and not decision.allowed:
        raise RateLimited(
            f"Too many reports: at most {limit} per {window} s.", headers=decision.headers()
        )


async def moderator(principal: ModeratorPrincipal, user: ActiveUser) -> service.Actor:
    """The acting moderator; a banned moderator account may read but not act (403)."""
    return service.Actor(profile_id=user.id, sub=principal.sub)


Moderator = Annotated[service.Actor, Depends(moderator)]
OptionalNote = Annotated[ModerationNote | None, Body()]
NoteQuery = Annotated[Note, Query(description="Why (kept in the audit log).")]


def _note(body: ModerationNote | None) -> str | None:
    return body.note if body is not None else None


reports_router = APIRouter(tags=[TAG])
admin_router = APIRouter(
    prefix="/admin", tags=[TAG], dependencies=[Depends(require_moderator)], responses=AUTH
)


# -- reporting --------------------------------------------------------------------------------
@reports_router.post(
    "/reports",
    status_code=201,
    response_model=ReportRead,
    dependencies=[Depends(report_budget)],
    responses={
        200: {
            "description": "The caller's open report on this target already existed",
            "model": ReportRead,
        },
        401: AUTH[401],
        403: BANNED,
        404: problem_doc(404, "TRACK_NOT_FOUND", "Not found", "No such target visible to you."),
        422: problem_doc(
            422, "CANNOT_REPORT_SELF", "Validation failed", "You cannot report yourself."
        ),
        429: problem_doc(
            429, "RATE_LIMITED", "Too many requests", "Too many reports: at most 10 per 3600 s."
        ),
    },
)
async def create_report(
    body: ReportCreate,
    user: ActiveUser,
    request: Request,
    response: Response,
    session: SessionDep,
    kernel: KernelDep,
) -> ReportRead:
    """Report something you can see (404 otherwise, with the target's code). One open report
    per reporter and target: a repeat answers 200 with the existing report instead of 201."""
    report, created = await service.file_report(
        kernel, session, user.id, request.state.principal, body
    )
    response.status_code = 201 if created else 200
    return ReportRead.model_validate(report)


# -- the queue --------------------------------------------------------------------------------
@admin_router.get("/reports", response_model=Page[ReportRead], responses={422: BAD_CURSOR})
async def list_reports(
    session: SessionDep,
    status: Status | None = None,
    target_type: TargetType | None = None,
    target_id: uuid.UUID | None = None,
    sort: Annotated[Literal["newest", "oldest"], Query(description="Queue order.")] = "newest",
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[ReportRead]:
    """Reports, filtered by ``status`` / target; ``sort=oldest`` works the queue first-in
    first-out."""
    position = decode_cursor(cursor, arity=3)
    after = None
    if position is not None:
        if position[2] != sort:
            raise ValidationFailed("The cursor belongs to another order.", code="INVALID_CURSOR")
        after = (datetime.fromisoformat(position[0]), uuid.UUID(position[1]))
    async with session.begin():
        rows = await repo.list_reports(
            session,
            status=status,
            target_type=target_type,
            target_id=target_id,
            oldest_first=sort == "oldest",
            after=after,
            limit=limit + 1,
        )
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor([last.created_at.isoformat(), str(last.id), sort])
    return Page[ReportRead](
        items=[ReportRead.model_validate(r) for r in rows[:limit]], next_cursor=next_cursor
    )


@admin_router.get("/reports/{report_id}", response_model=ReportRead, responses={404: REPORT_404})
async def get_report(report_id: uuid.UUID, session: SessionDep) -> ReportRead:
    return ReportRead.model_validate(await service.get_report(session, report_id))


@admin_router.post(
    "/reports/{report_id}/resolve",
    response_model=Resolution,
    responses={
        404: REPORT_404,
        409: problem_doc(409, "REPORT_NOT_OPEN", "Conflict", "The report is already resolved."),
        422: problem_doc(
            422, "ACTION_NOT_APPLICABLE", "Validation failed", "'hide' does not apply to a user."
        ),
    },
)
async def resolve_report(
    report_id: uuid.UUID, body: Resolve, actor: Moderator, kernel: KernelDep
) -> Resolution:
    """Apply the action to the report's target and settle every open report on it:
    ``hide`` (track, comment), ``delete`` (track, comment, playlist), ``ban`` (the user, or
    the owner/author of the reported content), ``dismiss`` (nothing changes)."""
    report, entry = await service.resolve(kernel, actor, report_id, body.action, body.note)
    return Resolution(
        report=ReportRead.model_validate(report), audit_entry=AuditEntryRead.model_validate(entry)
    )


# -- direct actions ---------------------------------------------------------------------------
async def _act(
    kernel: Kernel,
    actor: service.Actor,
    verb: str,
    target_type: str,
    target_id: uuid.UUID,
    note: str | None,
) -> AuditEntryRead:
    entry = await service.moderate(kernel, actor, verb, target_type, target_id, note)
    return AuditEntryRead.model_validate(entry)


@admin_router.post(
    "/tracks/{track_id}/hide", response_model=AuditEntryRead, responses={404: TRACK_404}
)
async def hide_track(
    track_id: uuid.UUID,
    actor: Moderator,
    kernel: KernelDep,
    body: OptionalNote = None,
) -> AuditEntryRead:
    """Hide a track from everyone but its owner and moderators, at once (settles its open
    reports). Answers the audit entry."""
    return await _act(kernel, actor, "hide", "track", track_id, _note(body))


@admin_router.post(
    "/tracks/{track_id}/unhide", response_model=AuditEntryRead, responses={404: TRACK_404}
)
async def unhide_track(
    track_id: uuid.UUID,
    actor: Moderator,
    kernel: KernelDep,
    body: OptionalNote = None,
) -> AuditEntryRead:
    return await _act(kernel, actor, "unhide", "track", track_id, _note(body))


@admin_router.delete(
    "/tracks/{track_id}", response_model=AuditEntryRead, responses={404: TRACK_404}
)
async def delete_track(
    track_id: uuid.UUID,
    actor: Moderator,
    kernel: KernelDep,
    note: NoteQuery = None,
) -> AuditEntryRead:
    """Delete a track for good (likes, comments, playlist entries and history go with it)."""
    return await _act(kernel, actor, "delete", "track", track_id, note)


@admin_router.post(
    "/comments/{comment_id}/hide", response_model=AuditEntryRead, responses={404: COMMENT_404}
)
async def hide_comment(
    comment_id: uuid.UUID,
    actor: Moderator,
    kernel: KernelDep,
    body: OptionalNote = None,
) -> AuditEntryRead:
    return await _act(kernel, actor, "hide", "comment", comment_id, _note(body))


@admin_router.post(
    "/comments/{comment_id}/unhide", response_model=AuditEntryRead, responses={404: COMMENT_404}
)
async def unhide_comment(
    comment_id: uuid.UUID,
    actor: Moderator,
    kernel: KernelDep,
    body: OptionalNote = None,
) -> AuditEntryRead:
    return await _act(kernel, actor, "unhide", "comment", comment_id, _note(body))


@admin_router.delete(
    "/comments/{comment_id}", response_model=AuditEntryRead, responses={404: COMMENT_404}
)
async def delete_comment(
    comment_id: uuid.UUID,
    actor: Moderator,
    kernel: KernelDep,
    note: NoteQuery = None,
) -> AuditEntryRead:
    """Delete a comment and its replies."""
    return await _act(kernel, actor, "delete", "comment", comment_id, note)


@admin_router.delete(
    "/playlists/{playlist_id}", response_model=AuditEntryRead, responses={404: PLAYLIST_404}
)
async def delete_playlist(
    playlist_id: uuid.UUID,
    actor: Moderator,
    kernel: KernelDep,
    note: NoteQuery = None,
) -> AuditEntryRead:
    return await _act(kernel, actor, "delete", "playlist", playlist_id, note)


@admin_router.post(
    "/users/{user_id}/ban",
    response_model=AuditEntryRead,
    responses={
        404: USER_404,
        422: problem_doc(422, "CANNOT_BAN_SELF", "Validation failed", "You cannot ban yourself."),
    },
)
async def ban_user(
    user_id: uuid.UUID,
    actor: Moderator,
    kernel: KernelDep,
    body: OptionalNote = None,
) -> AuditEntryRead:
    """Ban an account: 403 ``ACCOUNT_BANNED`` on its writes, its profile and content hidden."""
    return await _act(kernel, actor, "ban", "user", user_id, _note(body))


@admin_router.post(
    "/users/{user_id}/unban", response_model=AuditEntryRead, responses={404: USER_404}
)
async def unban_user(
    user_id: uuid.UUID,
    actor: Moderator,
    kernel: KernelDep,
    body: OptionalNote = None,
) -> AuditEntryRead:
    return await _act(kernel, actor, "unban", "user", user_id, _note(body))


# -- audit log --------------------------------------------------------------------------------
@admin_router.get("/audit-log", response_model=Page[AuditEntryRead], responses={422: BAD_CURSOR})
async def audit_log(
    session: SessionDep,
    actor_id: uuid.UUID | None = None,
    action: Annotated[str | None, Query(max_length=32, examples=["track.hide"])] = None,
    target_type: Annotated[str | None, Query(max_length=16)] = None,
    target_id: uuid.UUID | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[AuditEntryRead]:
    """The append-only log, newest first; filter by actor, action, or target."""
    position = decode_cursor(cursor, arity=1)
    if position is not None and not isinstance(position[0], int):
        raise ValidationFailed("The cursor is not valid for this list.", code="INVALID_CURSOR")
    async with session.begin():
        rows = await repo.list_audit(
            session,
            actor_id=actor_id,
            action=action,
            target_type=target_type,
            target_id=target_id,
            before=position[0] if position else None,
            limit=limit + 1,
        )
    next_cursor = encode_cursor([rows[limit - 1].id]) if len(rows) > limit else None
    return Page[AuditEntryRead](
        items=[AuditEntryRead.model_validate(r) for r in rows[:limit]], next_cursor=next_cursor
    )
