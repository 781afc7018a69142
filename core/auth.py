"""The principal and the FastAPI dependencies that resolve it through the ``authenticate`` hook."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request

from core.errors import Forbidden, Unauthorized


@dataclass(frozen=True)
class Principal:
    """Who is calling: the verified ``sub`` of an access token, with its roles and email."""

    sub: str
    roles: frozenset[str] = frozenset()
    email: str | None = None
    claims: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def is_moderator(self) -> bool:
        return bool(self.roles & {"admin", "moderator"})


async def optional_principal(request: Request) -> Principal | None:
    """The caller's principal, or ``None`` for an anonymous request."""
    cached = getattr(request.state, "principal", ...)
    if cached is not ...:
        return cached
    kernel = request.app.state.kernel
    result = kernel.pm.hook.authenticate(request=request, kernel=kernel)
    if inspect.isawaitable(result):
        result = await result
    request.state.principal = result
    return result


async def require_principal(
    principal: Annotated[Principal | None, Depends(optional_principal)],
) -> Principal:
    """The caller's principal; 401 when the request is anonymous."""
    if principal is None:
        raise Unauthorized("Authentication required: send 'Authorization: Bearer <token>'.")
    return principal


async def require_moderator(
    principal: Annotated[Principal, Depends(require_principal)],
) -> Principal:
    """A principal whose ``roles`` contain ``admin`` or ``moderator``; 403 otherwise."""
    if not principal.is_moderator:
        raise Forbidden("This action needs the 'admin' or 'moderator' role.")
    return principal


MaybePrincipal = Annotated[Principal | None, Depends(optional_principal)]
CurrentPrincipal = Annotated[Principal, Depends(require_principal)]
ModeratorPrincipal = Annotated[Principal, Depends(require_moderator)]
