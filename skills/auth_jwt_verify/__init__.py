"""auth-jwt-verify: RS256 access tokens from the external Auth Server, verified against its
JWKS, become a :class:`core.auth.Principal`. See README.md in this folder.

This module stays import-cheap: joserfc and httpx load on the first hook call that needs them.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING

from core.skill import CacheKey, HealthCheck, Skill, hookimpl

if TYPE_CHECKING:
    from pydantic_settings import BaseSettings
    from starlette.requests import Request

    from core.auth import Principal
    from core.kernel import Kernel

SKILL = Skill(
    name="auth-jwt-verify",
    version="0.1.0",
    description="Verifies the Auth Server's RS256 access tokens against its JWKS.",
)
JWKS_CACHE = CacheKey("jwks", 3600, "the Auth Server's public keys, per JWKS URL")


@hookimpl
def authenticate(request: Request, kernel: Kernel) -> Awaitable[Principal] | None:
    """Answer only for a bearer token, so anonymous requests stay ``None`` for other skills."""
    from skills.auth_jwt_verify.verify import bearer_token, verifier_for

    token = bearer_token(request)
    if token is None:
        return None
    return verifier_for(kernel).verify(token)


@hookimpl
def register_settings() -> type[BaseSettings]:
    from skills.auth_jwt_verify.settings import AuthJwtSettings

    return AuthJwtSettings


@hookimpl
def register_cache_keys() -> list[CacheKey]:
    return [JWKS_CACHE]


@hookimpl
def register_health_checks(kernel: Kernel) -> list[HealthCheck]:
    async def jwks() -> None:
        from skills.auth_jwt_verify.verify import verifier_for

        await verifier_for(kernel).jwks.ensure_loaded()

    # Not critical: with keys already in memory the API still verifies tokens.
    return [HealthCheck("jwks", jwks, critical=False)]
