"""``GET /.well-known/jwks.json``: the dev issuer's public key, for auth-jwt-verify to fetch."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from skills.dev_auth_issuer.keys import loaded_jwks, public_jwks

if TYPE_CHECKING:
    from core.kernel import Kernel

CACHE_CONTROL = "public, max-age=300"


def build_router(kernel: Kernel) -> APIRouter:
    router = APIRouter()
    data_dir = kernel.settings.data_dir

    @router.get(
        "/.well-known/jwks.json",
        summary="The dev issuer's public signing key (JWKS)",
        response_model=None,
    )
    async def jwks() -> JSONResponse:
        # The first call may generate the RSA key: do that off the event loop.
        document = loaded_jwks(data_dir) or await asyncio.to_thread(public_jwks, data_dir)
        return JSONResponse(document, headers={"Cache-Control": CACHE_CONTROL})

    return router
