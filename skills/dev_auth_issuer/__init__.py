"""dev-auth-issuer: a local stand-in for the Auth Server in dev and tests — an RSA key,
``/.well-known/jwks.json`` and ``soundhive token``. It refuses to load in production.
See README.md in this folder.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.skill import Skill, hookimpl

if TYPE_CHECKING:
    import typer
    from fastapi import APIRouter

    from core.kernel import Kernel
    from core.settings import Settings

SKILL = Skill(
    name="dev-auth-issuer",
    version="0.1.0",
    description="Dev/test only: signs tokens with a local RSA key and publishes its JWKS.",
)
BANNER_TOKEN_SECONDS = 24 * 3600


@hookimpl
def check_settings(settings: Settings) -> list[str]:
    if settings.env == "prod":
        return [
            "it signs tokens with a key kept on local disk, so anyone who can read that file "
            "can act as any user; disable it in production (SOUNDHIVE_SKILLS_DISABLED="
            "dev-auth-issuer) and trust the real Auth Server"
        ]
    return []


@hookimpl
def register_public_routers(kernel: Kernel) -> list[APIRouter]:
    from skills.dev_auth_issuer.router import build_router

    return [build_router(kernel)]


@hookimpl
def register_cli(app: typer.Typer) -> None:
    from skills.dev_auth_issuer.cli import add_commands

    add_commands(app)


@hookimpl
def dev_banner(settings: Settings) -> list[str]:
    from skills.dev_auth_issuer.keys import mint

    token = mint(settings, "dev", roles=("admin",), expires_in=BANNER_TOKEN_SECONDS)
    return [
        "Dev token (sub 'dev', role admin, valid 24 h):",
        f"  Authorization: Bearer {token}",
        "More tokens: soundhive token --sub alice [--role moderator]",
    ]
