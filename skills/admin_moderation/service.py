"""Moderation rules: filing reports, and every action (direct, or resolving a report) committed
in *one* transaction with its audit entry, the reports it settles and its events.

The owning skills' ``remove_*`` functions run their own ``session.begin()``. To make them part
of our transaction, an action runs on a session joined to a connection-level transaction
(:func:`unit`, ``join_transaction_mode="rollback_only"``, SQLAlchemy's documented way to join
a session into an external transaction): their ``commit`` only ends their block, a failure
rolls everything back, and the single real COMMIT is ours. Caches are dropped and events
relayed after it (the skills' own post-commit invalidations run before it, so they are repeated).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import Conflict, NotFound, ValidationFailed
from core.events import emit, relay_after_commit
from skills.admin_moderation import repository as repo
from skills.admin_moderation import targets
from skills.admin_moderation.models import TARGET_TYPES, AuditEntry, Report
from skills.admin_moderation.schemas import ReportCreate
from skills.admin_moderation.targets import Target
from skills.interaction_like_comment import api as comments
from skills.music_streaming_basic import api as tracks
from skills.playlist_management import api as playlists
from skills.user_profile import api as profiles

if TYPE_CHECKING:
    from core.auth import Principal
    from core.kernel import Kernel

HIDEABLE = ("track", "comment")
DELETABLE = ("track", "comment", "playlist")


@dataclass(frozen=True)
class Actor:
    """The moderator acting: profile id and the token's ``sub`` (both go to the audit log)."""

    profile_id: uuid.UUID
    sub: str


@dataclass
class Plan:
    """``verb`` on ``target``, settling the open reports on ``close_on``."""

    verb: str  # hide, unhide, delete, ban, unban, dismiss
    target: Target
    close_on: list[Target] = field(default_factory=list)
    report_id: uuid.UUID | None = None
    reported: Target | None = None  # the report's target, when the ban hits its owner


def report_not_found() -> NotFound:
    return NotFound("No report with that id.", code="REPORT_NOT_FOUND")


def not_open() -> Conflict:
    return Conflict("The report is already resolved or dismissed.", code="REPORT_NOT_OPEN")


@asynccontextmanager
async def unit(kernel: Kernel) -> AsyncIterator[AsyncSession]:
    """A session whose ``begin()``/``commit()`` blocks all join one database transaction,
    committed when the block exits cleanly and rolled back otherwise."""
    async with kernel.db.engine.connect() as conn, conn.begin():
        session = AsyncSession(
            bind=conn, join_transaction_mode="rollback_only", expire_on_commit=False
        )
        try:
            yield session
        finally:
            await session.close()


# -- reports ----------------------------------------------------------------------------------
async def file_report(
    kernel: Kernel,
    session: AsyncSession,
    reporter_id: uuid.UUID,
    principal: Principal,
    body: ReportCreate,
) -> tuple[Report, bool]:
    """The reporter's open report on the target and whether it was created now (a repeat
    returns the existing one). 404 when the reporter cannot see the target."""
    if body.target_type == "user" and body.target_id == reporter_id:
        raise ValidationFailed("You cannot report yourself.", code="CANNOT_REPORT_SELF")
    viewer = tracks.Viewer(profile_id=reporter_id, is_moderator=principal.is_moderator)
    async with session.begin():
        await targets.reportable(
            kernel, session, body.target_type, body.target_id, viewer, principal
        )
        for _ in range(3):  # the open duplicate may be settled between our two statements
            report = await repo.insert_open_report(
                session,
                reporter_id=reporter_id,
                target_type=body.target_type,
                target_id=body.target_id,
                reason=body.reason,
            )
            if report is not None:
                emit(session, "report.created", _report_payload(report))
                return report, True
            existing = await repo.open_report_of(
                session, reporter_id, body.target_type, body.target_id
            )
            if existing is not None:
                return existing, False
    raise Conflict("The report changed concurrently; try again.", code="REPORT_CONFLICT")


async def get_report(session: AsyncSession, report_id: uuid.UUID) -> Report:
    async with session.begin():
        report = await repo.get_report(session, report_id)
    if report is None:
        raise report_not_found()
    return report


async def resolve(
    kernel: Kernel, actor: Actor, report_id: uuid.UUID, action: str, note: str | None
) -> tuple[Report, AuditEntry]:
    """Apply ``action`` to the report's target and settle every open report on it."""
    async with unit(kernel) as session:
        async with session.begin():
            found = await repo.get_report(session, report_id)
            if found is None:
                raise report_not_found()
            if found.status != "open":
                raise not_open()
            plan = await _plan_for_report(kernel, session, actor, found, action)
            closing = await repo.lock_open_reports(session, [(t.type, t.id) for t in plan.close_on])
            report = next((r for r in closing if r.id == report_id), None)
            if report is None:  # settled by someone else while we looked at it
                raise not_open()
            entry = _record(session, actor, plan, note, closing)
        await _apply(kernel, session, actor, plan)
    await _after_commit(kernel, session, plan)
    return report, entry


async def _plan_for_report(
    kernel: Kernel, session: AsyncSession, actor: Actor, report: Report, action: str
) -> Plan:
    """The action matrix (README): hide → tracks and comments; delete → tracks, comments and
    playlists; ban → the account (the reported user, or the owner/author of the content)."""
    reported = Target(report.target_type, report.target_id, report.target_id)
    if action == "dismiss":
        return Plan("dismiss", reported, [reported], report.id)
    allowed = {"hide": HIDEABLE, "delete": DELETABLE, "ban": TARGET_TYPES}[action]
    if report.target_type not in allowed:
        raise ValidationFailed(
            f"'{action}' does not apply to a {report.target_type}; "
            f"use one of: {', '.join(_actions_for(report.target_type))}.",
            code="ACTION_NOT_APPLICABLE",
        )
    reported = await targets.find(kernel, session, report.target_type, report.target_id)
    if action != "ban":
        return Plan(action, reported, [reported], report.id)
    if reported.type == "user":
        _not_self(actor, reported)
        return Plan("ban", reported, [reported], report.id)
    user = await targets.find(kernel, session, "user", reported.owner_id)
    _not_self(actor, user)
    return Plan("ban", user, [reported, user], report.id, reported)


def _actions_for(target_type: str) -> list[str]:
    found = [a for a, types in (("hide", HIDEABLE), ("delete", DELETABLE)) if target_type in types]
    return [*found, "ban", "dismiss"]


def _not_self(actor: Actor, user: Target) -> None:
    if user.id == actor.profile_id:
        raise ValidationFailed("You cannot ban yourself.", code="CANNOT_BAN_SELF")


# -- direct actions ---------------------------------------------------------------------------
async def moderate(
    kernel: Kernel,
    actor: Actor,
    verb: str,
    target_type: str,
    target_id: uuid.UUID,
    note: str | None,
) -> AuditEntry:
    """A moderator's own action on a target. Hide, delete and ban also settle the open
    reports on it; unhide and unban reopen nothing."""
    async with unit(kernel) as session:
        async with session.begin():
            target = await targets.find(kernel, session, target_type, target_id)
            if verb == "ban":
                _not_self(actor, target)
            plan = Plan(verb, target, [target] if verb in ("hide", "delete", "ban") else [])
            closing = await repo.lock_open_reports(session, [(target_type, target_id)])
            entry = _record(session, actor, plan, note, closing if plan.close_on else [])
        await _apply(kernel, session, actor, plan)
    await _after_commit(kernel, session, plan)
    return entry


def _record(
    session: AsyncSession, actor: Actor, plan: Plan, note: str | None, closing: list[Report]
) -> AuditEntry:
    """Settle the reports and add the audit entry and events (inside the transaction)."""
    now = datetime.now(UTC)
    status = "dismissed" if plan.verb == "dismiss" else "resolved"
    for report in closing:
        report.status, report.action, report.note = status, plan.verb, note
        report.resolved_by, report.resolved_at = actor.profile_id, now
    target = plan.target
    details: dict[str, Any] = {"closed_report_ids": [str(r.id) for r in closing]}
    if plan.report_id is not None:
        details["report_id"] = str(plan.report_id)
    if plan.reported is not None:
        details["reported"] = {"type": plan.reported.type, "id": str(plan.reported.id)}
    if plan.verb != "dismiss":
        details["owner_id"] = str(target.owner_id)
        # whether the state changed, as read just before (hide of a hidden track: False)
        details["changed"] = plan.verb == "delete" or target.hidden != (
            plan.verb in ("hide", "ban")
        )
    entry = AuditEntry(
        actor_id=actor.profile_id,
        actor_sub=actor.sub,
        action="report.dismiss" if plan.verb == "dismiss" else f"{target.type}.{plan.verb}",
        target_type=target.type,
        target_id=target.id,
        note=note,
        details=details,
        created_at=now,
    )
    session.add(entry)
    if target.type == "track" and plan.verb in ("hide", "unhide"):
        event = "track.hidden" if plan.verb == "hide" else "track.unhidden"
        emit(session, event, {"track_id": str(target.id), "owner_id": str(target.owner_id)})
    for report in closing:
        emit(session, "report.resolved", _report_payload(report))
    return entry


async def _apply(kernel: Kernel, session: AsyncSession, actor: Actor, plan: Plan) -> None:
    """Run the change in the unit's transaction; 404 (and a full rollback) if the target
    vanished since it was looked up."""
    target, verb = plan.target, plan.verb
    if verb == "delete":
        if not await _delete(kernel, session, actor, target):
            raise targets.not_found(target.type)
        return
    async with session.begin():
        if target.type == "track" and verb in ("hide", "unhide"):
            if not await tracks.set_hidden(session, target.id, verb == "hide"):
                raise targets.not_found("track")
        elif verb in ("hide", "unhide"):
            await comments.set_comment_hidden(session, target.id, verb == "hide")
        elif verb in ("ban", "unban"):
            await profiles.set_banned(session, target.id, verb == "ban")


async def _delete(kernel: Kernel, session: AsyncSession, actor: Actor, target: Target) -> bool:
    if target.type == "track":
        return await tracks.remove_track(kernel, session, target.id, actor_id=actor.profile_id)
    if target.type == "comment":
        removed = await comments.remove_comment(
            kernel, session, target.id, actor_id=actor.profile_id
        )
        return removed > 0
    return await playlists.remove_playlist(session, target.id)


async def _after_commit(kernel: Kernel, session: AsyncSession, plan: Plan) -> None:
    """Drop what the change made stale — at once, so detail views 404 in this very instant —
    and relay the committed events."""
    target, verb = plan.target, plan.verb
    if target.type == "track" and verb != "dismiss":
        await tracks.invalidate_track(kernel, target.id)
    if target.type == "comment" and verb == "delete" and target.track_id is not None:
        await tracks.invalidate_track(kernel, target.track_id)  # its comment_count changed
    if target.type == "user" and verb in ("ban", "unban"):
        await profiles.invalidate_profile(kernel, target.id)
        async with kernel.db.session() as reader, reader.begin():
            await tracks.invalidate_owner_tracks(kernel, reader, target.id)
    if target.type == "track" and verb == "delete":
        await profiles.invalidate_profile(kernel, target.owner_id)  # its tracks_count changed
    await relay_after_commit(kernel, session)


def _report_payload(report: Report) -> dict[str, Any]:
    return {
        "report_id": str(report.id),
        "reporter_id": str(report.reporter_id),
        "target_type": report.target_type,
        "target_id": str(report.target_id),
        "status": report.status,
        "action": report.action,
    }
