"""The app factory: a FastAPI app for one kernel, with no work done at import time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.middleware import Middleware

from core import __version__
from core.errors import install_error_handlers
from core.kernel import Kernel
from core.logging import configure_logging
from core.middleware import (
    AccessLogMiddleware,
    ConcurrencyLimitMiddleware,
    RateLimitMiddleware,
    RequestIdMiddleware,
)
from core.plugins import SkillError
from core.settings import Settings, parse_rate
from core.storage import prepare_storage
from core.storage.local_routes import ServedUrlMiddleware, local_storage_router

API_PREFIX = "/api/v1"


def create_app(
    settings: Settings | None = None,
    *,
    kernel: Kernel | None = None,
    extra_plugins: Iterable[Any] = (),
) -> FastAPI:
    """Build the API for ``settings``: load and validate skills, mount their routers."""
    settings = settings or (kernel.settings if kernel else Settings())
    kernel = kernel or Kernel(settings, extra_plugins=extra_plugins)
    configure_logging(settings.log_level, json=settings.log_json)
    limit, window = parse_rate(settings.rate_limit)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with kernel.running():
            await prepare_storage(kernel.storage)
            yield

    app = FastAPI(
        title="Soundhive API",
        version=__version__,
        description="Backend of a music-sharing social network. Errors are RFC 9457 problems.",
        lifespan=lifespan,
        middleware=[
            Middleware(
                CORSMiddleware,
                allow_origins=settings.cors_origins or [],
                allow_credentials=True,
                allow_methods=["*"],
                allow_headers=["Authorization", "Content-Type", "X-Request-ID", "Last-Event-ID"],
                expose_headers=[
                    "X-Request-ID",
                    "RateLimit-Limit",
                    "RateLimit-Remaining",
                    "RateLimit-Reset",
                    "RateLimit-Policy",
                    "Retry-After",
                    "Location",
                ],
            ),
            Middleware(RequestIdMiddleware),
            Middleware(RateLimitMiddleware, kernel=kernel, limit=limit, window=window),
            Middleware(ConcurrencyLimitMiddleware, limit=settings.concurrency_limit),
            Middleware(AccessLogMiddleware),
        ],
    )
    app.state.kernel = kernel
    install_error_handlers(app)
    app.include_router(operations_router(kernel))
    if settings.storage == "local":
        app.include_router(local_storage_router(kernel))
        if not settings.public_url:
            app.add_middleware(ServedUrlMiddleware)
    mount_skill_routers(app, kernel)
    return app


def mount_skill_routers(app: FastAPI, kernel: Kernel) -> None:
    """Mount each skill's routers, tagging routes with the skill and refusing collisions."""
    claimed: dict[tuple[str, str], str] = {
        (method, route.path): "core"
        for route in app.routes
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    }
    for hook, prefix in (("register_routers", API_PREFIX), ("register_public_routers", "")):
        for skill, routers in kernel.call_each(hook, kernel=kernel):
            for router in routers:
                for route in router.routes:
                    if not isinstance(route, APIRoute):
                        continue
                    path = prefix + route.path
                    for method in route.methods or ():
                        owner = claimed.get((method, path))
                        if owner is not None:
                            raise SkillError(
                                f"skill {skill!r} claims route {method} {path}, "
                                f"already claimed by {owner!r}"
                            )
                        claimed[(method, path)] = skill
                    methods = ",".join(sorted(route.methods or ()))
                    kernel.skills[skill].routes.append(f"{methods} {path}")
                app.include_router(router, prefix=prefix, tags=[] if router.tags else [skill])


def operations_router(kernel: Kernel) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", summary="Each dependency: database, Redis, broker, skills' checks")
    async def readyz(response: Response) -> dict[str, Any]:
        checks = await readiness(kernel)
        ready = all(c["ok"] for c in checks.values() if c["critical"])
        response.status_code = 200 if ready else 503
        return {"status": "ready" if ready else "unavailable", "checks": checks}

    @router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def metrics_endpoint() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


async def readiness(kernel: Kernel) -> dict[str, dict[str, Any]]:
    async def database() -> None:
        async with kernel.db.session() as session:
            await session.execute(text("SELECT 1"))

    async def redis() -> None:
        if kernel.redis is None:
            raise RuntimeError("not configured")
        await kernel.redis.ping()
        kernel.circuit.reset()

    async def broker() -> None:
        await asyncio.to_thread(ping_broker, kernel)

    async def storage() -> None:
        await kernel.storage.check()

    # Local storage is this instance's disk: when it fails, take the instance out of rotation.
    # S3 is shared by every replica: an outage must not empty the load balancer.
    probes: list[tuple[str, Any, bool]] = [
        ("database", database, True),
        ("redis", redis, False),
        ("broker", broker, False),
        ("storage", storage, kernel.settings.storage == "local"),
    ]
    probes += [(f"{skill}:{c.name}", c.check, c.critical) for skill, c in kernel.health_checks()]
    results: dict[str, dict[str, Any]] = {}
    for name, probe, critical in probes:
        try:
            await asyncio.wait_for(probe(), timeout=3)
            results[name] = {"ok": True, "critical": critical}
        except Exception as exc:
            results[name] = {"ok": False, "critical": critical, "error": type(exc).__name__}
    return results


def ping_broker(kernel: Kernel) -> None:
    """Open the broker's connection: Redis PING, or an AMQP connection."""
    broker = kernel.broker
    client = getattr(broker, "client", None)
    if client is not None:
        client.ping()
        return
    connection = getattr(broker, "connection", None)
    if connection is not None and not connection.is_open:
        raise ConnectionError("broker connection closed")
