"""API models of reports and the audit log. Every body rule is here, so it surfaces as 422
``VALIDATION_FAILED`` with ``errors: [{loc, msg}]``."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer

TargetType = Literal["track", "comment", "user", "playlist"]
Action = Literal["hide", "delete", "ban", "dismiss"]
Status = Literal["open", "resolved", "dismissed"]
REASON_MAX = 1000
NOTE_MAX = 2000
# C0/C1 controls except newline and tab, and bidi overrides (text that renders as other text)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _as_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, PlainSerializer(_as_utc, return_type=datetime)]
"""RFC 3339 in UTC whatever the database session's time zone."""


def _text(value: str) -> str:
    value = value.replace("\r\n", "\n").strip()
    if not value:
        raise ValueError("must not be blank")
    if _CONTROL.search(value):
        raise ValueError("control characters are not allowed (newline and tab are)")
    return value


def _note(value: str | None) -> str | None:
    return None if value is None or not value.strip() else _text(value)


Reason = Annotated[str, Field(min_length=1, max_length=REASON_MAX), AfterValidator(_text)]
Note = Annotated[str | None, Field(max_length=NOTE_MAX), AfterValidator(_note)]

_REPORT_EXAMPLE: dict[str, Any] = {
    "id": "3d4c1f0e-7b2a-4c59-9e8d-1a2b3c4d5e6f",
    "reporter_id": "0b8f5c9e-2f4a-4d1e-8a57-3c2d1e0f9a88",
    "target_type": "track",
    "target_id": "5f0c6a4e-8d1b-4c59-9a57-0b7f0e7c1a11",
    "reason": "Re-upload of a copyrighted album.",
    "status": "resolved",
    "action": "hide",
    "note": "Confirmed with the label's notice.",
    "resolved_by": "7e6d5c4b-3a29-4817-8f6e-5d4c3b2a1908",
    "resolved_at": "2026-03-02T09:15:00Z",
    "created_at": "2026-03-01T12:00:00Z",
}
_AUDIT_EXAMPLE: dict[str, Any] = {
    "id": 42,
    "actor_id": "7e6d5c4b-3a29-4817-8f6e-5d4c3b2a1908",
    "actor_sub": "auth0|moderator-7",
    "action": "track.hide",
    "target_type": "track",
    "target_id": "5f0c6a4e-8d1b-4c59-9a57-0b7f0e7c1a11",
    "note": "Confirmed with the label's notice.",
    "details": {
        "report_id": "3d4c1f0e-7b2a-4c59-9e8d-1a2b3c4d5e6f",
        "closed_report_ids": ["3d4c1f0e-7b2a-4c59-9e8d-1a2b3c4d5e6f"],
        "owner_id": "0b8f5c9e-2f4a-4d1e-8a57-3c2d1e0f9a88",
        "changed": True,
    },
    "created_at": "2026-03-02T09:15:00Z",
}


class ReportCreate(BaseModel):
    """A report of something the caller can see; any other field is refused."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "target_type": "track",
                    "target_id": "5f0c6a4e-8d1b-4c59-9a57-0b7f0e7c1a11",
                    "reason": "Re-upload of a copyrighted album.",
                }
            ]
        },
    )

    target_type: TargetType
    target_id: uuid.UUID
    reason: Reason = Field(description=f"Why (1–{REASON_MAX} characters, newlines allowed).")


class ReportRead(BaseModel):
    """A report (SPEC §5 "Report") plus the moderator's ``note``, ``resolved_by`` (profile
    id) and ``resolved_at``."""

    model_config = ConfigDict(
        from_attributes=True, json_schema_extra={"examples": [_REPORT_EXAMPLE]}
    )

    id: uuid.UUID
    reporter_id: uuid.UUID
    target_type: TargetType
    target_id: uuid.UUID
    reason: str
    status: Status
    action: Action | None = None
    note: str | None = None
    resolved_by: uuid.UUID | None = None
    resolved_at: UtcDatetime | None = None
    created_at: UtcDatetime


class Resolve(BaseModel):
    """How a moderator settles a report; see the README for what each action does to each
    kind of target."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"action": "hide", "note": "Confirmed with the label's notice."},
                {"action": "dismiss", "note": "Satire, within the rules."},
            ]
        },
    )

    action: Action
    note: Note = Field(default=None, description=f"Why (at most {NOTE_MAX} characters).")


class ModerationNote(BaseModel):
    """The optional reason a moderator gives for a direct action (kept in the audit log)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"note": "Spam links in the title."}]}
    )

    note: Note = Field(default=None, description=f"Why (at most {NOTE_MAX} characters).")


class AuditEntryRead(BaseModel):
    """One entry of the append-only audit log: who, what, on which target, why, when.

    ``action`` is ``<target_type>.<verb>`` (``track.hide``, ``user.ban``, ``report.dismiss``
    …); ``details`` carries the report ids it settled and what changed."""

    model_config = ConfigDict(
        from_attributes=True, json_schema_extra={"examples": [_AUDIT_EXAMPLE]}
    )

    id: int
    actor_id: uuid.UUID | None
    actor_sub: str
    action: str
    target_type: str
    target_id: uuid.UUID
    note: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    created_at: UtcDatetime


class Resolution(BaseModel):
    """A resolved (or dismissed) report and the audit entry of what was done."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"report": _REPORT_EXAMPLE, "audit_entry": _AUDIT_EXAMPLE}]}
    )

    report: ReportRead
    audit_entry: AuditEntryRead
