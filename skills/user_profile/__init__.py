"""``user-profile``: one profile per auth ``sub``, provisioned on first call, soft-deleted.

Other skills import :mod:`skills.user_profile.api` only. Hooks stay thin and import the heavy
modules when called, so discovering the skill does no work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.skill import CacheKey, Skill, hookimpl

if TYPE_CHECKING:
    from fastapi import APIRouter

    from core.kernel import Kernel

SKILL = Skill(
    name="user-profile",
    version="0.1.0",
    requires=("auth-jwt-verify",),
    description="User profiles 1:1 with the auth subject: provisioning, edits, soft delete.",
)


@hookimpl
def register_models() -> list[type[Any]]:
    from skills.user_profile.models import UserProfile

    return [UserProfile]


@hookimpl
def register_routers(kernel: Kernel) -> list[APIRouter]:
    from skills.user_profile.router import router

    return [router]


@hookimpl
def register_cache_keys() -> list[CacheKey]:
    return [
        CacheKey(
            "user-profile",
            600,
            "public profile by id (id:<uuid>), handle → id (handle:<handle>), the caller's "
            "account (acct:<uuid>, 5 min; 10 s tombstone) and sub → id (sub:<sub>, 1 day); "
            "API processes keep what they read in memory for 30 s (near cache)",
            near_ttl_seconds=30,
        )
    ]
