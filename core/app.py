"""The app factory: a FastAPI app for one kernel, with no work done at import time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.middleware import Middleware

from core import __version__
from core.auth import optional_principal
from core.errors import PROBLEM_JSON, Problem, install_error_handlers
from core.events import BackgroundRelay
from core.kernel import Kernel
from core.logging import configure_logging
from core.middleware import _EXEMPT, ApiMiddleware, CorsForOrigins
from core.plugins import SkillError
from core.ratelimit import BatchedCounter
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

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with kernel.running():
            await prepare_storage(kernel.storage)
            kernel.relay = BackgroundRelay(kernel)
            kernel.relay.start()
            near = kernel.cache.listener(settings.redis_url) if settings.redis_url else None
            if near is not None:
                near.start()
            kernel.rate_counter = BatchedCounter(kernel.cache)
            kernel.rate_counter.start()
            try:
                yield
            finally:
                await kernel.rate_counter.stop()
                kernel.rate_counter = None
                if near is not None:
                    await near.stop()
                await kernel.relay.stop()
                kernel.relay = None

    app = FastAPI(
        title="Soundhive API",
        version=__version__,
        description="Backend of a music-sharing social network. Errors are RFC 9457 problems.",
        lifespan=lifespan,
        middleware=middleware_stack(kernel, settings),
    )
    app.state.kernel = kernel
    install_error_handlers(app)
    app.include_router(operations_router(kernel))
    if settings.storage == "local":
        app.include_router(local_storage_router(kernel))
        if not settings.public_url:
            app.add_middleware(ServedUrlMiddleware)
    mount_skill_routers(app, kernel)
    document_problems(app)
    return app


def middleware_stack(kernel: Kernel, settings: Settings) -> list[Middleware]:
    """CORS (only when origins are configured: without any, it adds nothing but a layer),
    then the kernel's pipeline (request id → rate limit → concurrency → access log → body cap)."""
    limit, window = parse_rate(settings.rate_limit)
    stack = [
        Middleware(
            ApiMiddleware,
            kernel=kernel,
            limit=limit,
            window=window,
            concurrency=settings.concurrency_limit,
            max_body=settings.max_json_bytes,
            vary_origin=bool(settings.cors_origins),
        )
    ]
    if settings.cors_origins:
        cors = Middleware(
            CorsForOrigins,
            allow_origins=settings.cors_origins,
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
        )
        stack.insert(0, cors)
    return stack


_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_VALIDATION_REF = {"$ref": "#/components/schemas/HTTPValidationError"}
COMMON_PROBLEMS: dict[str, str] = {
    "400": "The body is not UTF-8 JSON (BAD_REQUEST)",
    "401": "Missing, invalid or expired bearer token (UNAUTHORIZED)",
    "403": "The account may not do this: deleted (ACCOUNT_DELETED), banned from changing "
    "anything (ACCOUNT_BANNED), or without the right (FORBIDDEN, or the operation's own code)",
    "413": "Request body over SOUNDHIVE_MAX_JSON_BYTES (PAYLOAD_TOO_LARGE)",
    "422": "Invalid parameters or body (VALIDATION_FAILED, with `errors`), or a rule of the "
    "operation (its own code)",
    "429": "Rate limit spent (RATE_LIMITED); `Retry-After` says when to come back",
    "503": "A dependency is down or the process is saturated (SERVICE_UNAVAILABLE); "
    "`Retry-After` says when to retry",
}


def document_problems(app: FastAPI) -> None:
    """Make the OpenAPI document say what the kernel answers on every route: each error
    response is ``application/problem+json`` with the ``Problem`` schema, and the problems
    any route can give (401 and 403 where a token is read, 422 where there is input, 400 and
    413 where there is a body, 429 on the API, 503 but on probes) are listed even if the
    skill did not."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            reads_token = {
                (method, str(route.path_format))
                for route in iter_route_contexts(app.routes)
                if isinstance(getattr(route, "dependant", None), Dependant)
                and _depends_on(route.dependant, optional_principal)
                for method in route.methods or ()
            }
            schema = build()  # caches the document in app.openapi_schema: completed in place
            _add_problems(schema, reads_token)
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]


def _depends_on(dependant: Dependant, call: Any) -> bool:
    return any(d.call is call or _depends_on(d, call) for d in dependant.dependencies)


def _add_problems(schema: dict[str, Any], reads_token: set[tuple[str, str]]) -> None:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(problem.pop("$defs", {}))
    components["Problem"] = problem
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            common = set() if path in _EXEMPT else {"503"}
            if path.startswith(API_PREFIX):
                common.add("429")
            if (method.upper(), path) in reads_token:
                common |= {"401", "403"}
            if operation.get("parameters") or operation.get("requestBody"):
                common.add("422")
            if operation.get("requestBody"):
                common |= {"400", "413"}
            for status in common:
                responses.setdefault(status, {"description": COMMON_PROBLEMS[status]})
            for status, response in responses.items():
                if status[0] in "45":
                    _as_problem(response)
            operation["responses"] = dict(sorted(responses.items()))
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)


def _as_problem(response: dict[str, Any]) -> None:
    """Error bodies are problems: FastAPI's default 422 (``HTTPValidationError`` as
    ``application/json``, which the kernel never sends) is replaced, and entries without a
    body or without a schema get the Problem one. Other declared bodies stay as they are."""
    content = response.setdefault("content", {})
    if content.get("application/json", {}).get("schema") == _VALIDATION_REF:
        del content["application/json"]
    if not content or PROBLEM_JSON in content:
        content.setdefault(PROBLEM_JSON, {}).setdefault("schema", _PROBLEM_REF)


def mount_skill_routers(app: FastAPI, kernel: Kernel) -> None:
    """Mount each skill's routers, tagging routes with the skill and refusing collisions."""
    # iter_route_contexts: FastAPI keeps included routers (the kernel's own) as one entry
    claimed: dict[tuple[str, str], str] = {
        (method, str(route.path)): "core"
        for route in iter_route_contexts(app.routes)
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

    @router.get(
        "/readyz",
        summary="Each dependency: database, Redis, broker, skills' checks",
        responses={
            503: {
                "description": "Not ready: a critical check failed (same body as 200)",
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
        },
    )
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
