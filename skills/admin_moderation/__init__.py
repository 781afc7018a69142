"""``admin-moderation``: reports, hiding and deleting content, bans, and an append-only audit log.

Other skills are used only through their public ``api`` modules. Hooks stay thin and import
the heavy modules when called, so discovering the skill does no work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.skill import Skill, hookimpl

if TYPE_CHECKING:
    from fastapi import APIRouter

    from core.kernel import Kernel

SKILL = Skill(
    name="admin-moderation",
    version="0.1.0",
    requires=(
        "user-profile",
        "music-streaming-basic",
        "interaction-like-comment",
        "playlist-management",
    ),
    description="Reports, hide/unhide/delete tracks and comments, bans, append-only audit log.",
)


@hookimpl
def register_models() -> list[type[Any]]:
    from skills.admin_moderation.models import AuditEntry, Report

    return [Report, AuditEntry]


@hookimpl
def register_routers(kernel: Kernel) -> list[APIRouter]:
    from skills.admin_moderation.router import admin_router, reports_router

    return [reports_router, admin_router]


@hookimpl
def register_settings() -> type[Any]:
    from skills.admin_moderation.settings import ModerationSettings

    return ModerationSettings


@hookimpl
def check_settings() -> list[str]:
    """Refuse to start with a malformed ``SOUNDHIVE_MODERATION_*`` value."""
    from pydantic import ValidationError

    from skills.admin_moderation.settings import ModerationSettings

    try:
        ModerationSettings()
    except ValidationError as exc:
        return [
            f"SOUNDHIVE_MODERATION_{str(e['loc'][0]).upper()}: {e['msg']}" for e in exc.errors()
        ]
    return []
