"""``soundhive token``: print a dev access token, and nothing else, on stdout."""

from __future__ import annotations

from typing import Annotated

import typer


def add_commands(app: typer.Typer) -> None:
    app.command("token")(token)


def token(
    sub: Annotated[str, typer.Option("--sub", help="Subject: the user id the token speaks for.")],
    role: Annotated[
        list[str] | None, typer.Option("--role", help="A role claim (repeat for several).")
    ] = None,
    email: Annotated[str | None, typer.Option("--email", help="Optional email claim.")] = None,
    expires_in: Annotated[
        int, typer.Option("--expires-in", min=1, help="Lifetime in seconds.")
    ] = 3600,
) -> None:
    """Mint a dev access token (dev issuer) for SUB; stdout carries only the token."""
    from core.settings import Settings
    from skills.dev_auth_issuer.keys import mint

    settings = Settings()
    if settings.env == "prod":  # the kernel already refuses the skill; never mint regardless
        typer.echo("the dev issuer does not mint tokens when SOUNDHIVE_ENV=prod", err=True)
        raise typer.Exit(2)
    if not sub.strip():
        raise typer.BadParameter("must not be empty", param_hint="--sub")
    typer.echo(mint(settings, sub, roles=role or (), email=email, expires_in=expires_in))
