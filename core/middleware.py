"""Pure-ASGI middleware, outermost first: CORS → request id → rate limit → concurrency
limit → access log (SPEC §8), then the request body cap. Pure ASGI keeps streaming responses
(SSE, Range) intact."""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

import structlog
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core import metrics
from core.errors import (
    _is_unavailable,
    _is_unstorable_text,
    problem_response,
    unstorable_text_response,
)
from core.ratelimit import client_identity, hit

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_EXEMPT = ("/healthz", "/readyz", "/metrics", "/docs", "/openapi.json", "/redoc")
access_log = structlog.get_logger("soundhive.access")
log = logging.getLogger("soundhive.http")


def _with_headers(send: Send, extra: list[tuple[bytes, bytes]]) -> Send:
    """Add rate-limit headers unless a stricter route limit already set its own."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            present = {name.lower() for name, _ in headers}
            headers += [(name, value) for name, value in extra if name not in present]
            message = {**message, "headers": headers}
        await send(message)

    return wrapped


class RequestIdMiddleware:
    """Accepts a safe ``X-Request-ID`` or makes one, echoes it, and turns any exception that
    escaped the app into a problem response (503 for a dependency outage, else 500)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"
                ]
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if started:
                raise
            if _is_unstorable_text(exc):
                response = unstorable_text_response(Request(scope))
            elif _is_unavailable(exc):
                log.warning("dependency unavailable: %s", type(exc).__name__)
                response = problem_response(
                    Request(scope),
                    status=503,
                    code="SERVICE_UNAVAILABLE",
                    title="Service unavailable",
                    detail="A backing service is unavailable; try again shortly.",
                    headers={"Retry-After": "5"},
                )
            else:
                log.exception("unhandled error", exc_info=exc)
                response = problem_response(
                    Request(scope),
                    status=500,
                    code="INTERNAL_ERROR",
                    title="Internal server error",
                    detail="An unexpected error occurred; quote the request_id when reporting it.",
                )
            await response(scope, receive, send_with_id)
        finally:
            structlog.contextvars.unbind_contextvars("request_id")


class RateLimitMiddleware:
    """Per-principal (bearer token) or per-IP fixed window on ``/api/``; fails open."""

    def __init__(self, app: ASGIApp, *, kernel: Any, limit: int, window: int) -> None:
        self.app, self.kernel, self.limit, self.window = app, kernel, limit, window

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        identity = client_identity(scope["headers"], scope.get("client"))
        decision = await hit(self.kernel.cache, identity, self.limit, self.window)
        if decision is None:
            await self.app(scope, receive, send)
            return
        headers = [(k.lower().encode(), v.encode()) for k, v in decision.headers().items()]
        if not decision.allowed:
            response = problem_response(
                Request(scope),
                status=429,
                code="RATE_LIMITED",
                title="Too many requests",
                detail=f"Rate limit of {self.limit} requests per {self.window} s exceeded.",
                headers=decision.headers(),
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, _with_headers(send, headers))


class ConcurrencyLimitMiddleware:
    """Sheds load with 503 once ``limit`` requests are in flight in this process."""

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app, self.limit, self.in_flight = app, limit, 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _EXEMPT:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            response = problem_response(
                Request(scope),
                status=503,
                code="SERVICE_UNAVAILABLE",
                title="Server busy",
                detail="Too many requests in flight; retry shortly.",
                headers={"Retry-After": "1"},
            )
            await response(scope, receive, send)
            return
        self.in_flight += 1
        metrics.HTTP_IN_FLIGHT.inc()
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self.in_flight -= 1
                metrics.HTTP_IN_FLIGHT.dec()

        async def send_releasing_streams(message: Message) -> None:
            # a server-sent event stream stays open for minutes: it gives its slot back once
            # it starts, so open streams never starve ordinary requests (skills cap streams)
            if message["type"] == "http.response.start":
                for name, value in message.get("headers", []):
                    if name.lower() == b"content-type" and value.startswith(b"text/event-stream"):
                        release()
            await send(message)

        try:
            await self.app(scope, receive, send_releasing_streams)
        finally:
            release()


def route_template(scope: Scope) -> str:
    """The matched route's full path template (``/api/v1/tracks/{id}``), never the raw path,
    so metric labels stay few. FastAPI keeps the prefixed path on its effective route context."""
    context = scope.get("fastapi", {}).get("effective_route_context")
    path = getattr(context, "path", "") if context is not None else ""
    if not path:
        path = getattr(scope.get("route"), "path", "") or ""
    return path or "<unmatched>"


class AccessLogMiddleware:
    """One JSON line per request and per-route metrics. Logs the path only: query strings
    (presigned signatures) and headers (tokens) are never written."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            elapsed = time.perf_counter() - start
            route = route_template(scope)
            method = scope["method"]
            metrics.HTTP_REQUESTS.labels(method, route, str(status)).inc()
            metrics.HTTP_LATENCY.labels(method, route).observe(elapsed)
            if status >= 500:
                metrics.HTTP_ERRORS.labels(method, route).inc()
            if scope["path"] not in ("/healthz", "/metrics"):
                client = scope.get("client")
                access_log.info(
                    "request",
                    method=method,
                    path=scope["path"],
                    route=route,
                    status=status,
                    duration_ms=round(elapsed * 1000, 2),
                    client=client[0] if client else None,
                )


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once a streamed body passes the limit; FastAPI lets an
    ``HTTPException`` out of body parsing, so the app's handler renders the 413 problem."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"Request bodies are limited to {limit} bytes.")


class BodyLimitMiddleware:
    """413 ``PAYLOAD_TOO_LARGE`` for request bodies over ``limit`` bytes: at once when
    ``Content-Length`` says so, else as soon as a chunked body passes it, so a client cannot
    make the API buffer megabytes of JSON. Paths under ``exempt`` (local storage uploads,
    bounded by their signed length) pass untouched."""

    def __init__(self, app: ASGIApp, *, limit: int, exempt: tuple[str, ...] = ("/storage/",)):
        self.app, self.limit, self.exempt = app, limit, exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.exempt):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await self._too_large(scope, receive, send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:  # read outside FastAPI's body parsing: answer here
            if started:
                raise
            await self._too_large(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            Request(scope),
            status=413,
            code="PAYLOAD_TOO_LARGE",
            title="Payload too large",
            detail=f"Request bodies are limited to {self.limit} bytes.",
        )
        await response(scope, receive, send)
