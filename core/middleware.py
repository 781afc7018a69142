"""The kernel's pure-ASGI request pipeline (pure ASGI keeps streaming responses, SSE and
Range, intact). CORS, when origins are configured, is Starlette's and sits outside it."""

from __future__ import annotations

import itertools
import logging
import re
import secrets
import time
from typing import Any

import structlog
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
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
log = logging.getLogger("soundhive.http")


class ApiMiddleware:
    """The kernel's request pipeline in one ASGI layer, in SPEC §8 order: request id → rate
    limit (``/api/`` only) → concurrency limit → access log and metrics → request body cap.

    One layer with one ``send`` wrapper instead of five: each pure-ASGI layer costs a call
    frame and a wrapped ``send`` per message on every request (docs/PERFORMANCE.md).

    * **Request id**: accepts a safe ``X-Request-ID`` or makes one, echoes it, and turns any
      exception that escaped the app into a problem (503 for a dependency outage, else 500).
    * **Rate limit**: per bearer token or IP, a fixed window in Redis, counted in batches
      while the caller is far from its limit (``BatchedCounter``); fails open.
    * **Concurrency limit**: sheds load with 503 once ``concurrency`` requests are in flight
      in this process; a server-sent event stream gives its slot back once it starts.
    * **Access log**: one JSON line per request (the path only: query strings carry
      signatures, headers carry tokens) and per-route metrics.
    * **Body cap**: 413 ``PAYLOAD_TOO_LARGE`` at once when ``Content-Length`` says so, else as
      soon as a chunked body passes it; ``/storage/`` uploads are bounded by their signature.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        kernel: Any,
        limit: int,
        window: int,
        concurrency: int,
        max_body: int,
        body_exempt: tuple[str, ...] = ("/storage/",),
        vary_origin: bool = False,
    ) -> None:
        self.app, self.kernel = app, kernel
        self.limit, self.window = limit, window
        self.concurrency, self.in_flight = concurrency, 0
        self.max_body, self.body_exempt = max_body, body_exempt
        self.vary_origin = vary_origin
        """CORS is on: a request without ``Origin`` (which ``CorsForOrigins`` lets skip
        Starlette's CORS layer) still gets the ``Vary: Origin`` that layer would add."""
        self.access_log = structlog.get_logger("soundhive.access").bind()
        self._id_prefix = secrets.token_hex(8)
        """Request ids are this process's random prefix and a counter (32 hex digits, like a
        UUID's): unique without a ``getrandom`` call and a ``UUID`` object per request."""
        self._id_counter = itertools.count(1)
        self._children: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        if _SAFE_ID.match(incoming):
            request_id = incoming
        else:
            request_id = f"{self._id_prefix}{next(self._id_counter):016x}"
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.bind_contextvars(request_id=request_id)
        start = time.perf_counter()
        path: str = scope["path"]
        state = _Exchange(request_id, send, self)
        state.vary = self.vary_origin and b"origin" not in headers
        try:
            await self._limited(scope, receive, state, headers, path)
        except Exception as exc:
            if state.started:
                raise
            await _error_response(scope, exc)(scope, receive, state.forward)
        finally:
            state.release(self)
            structlog.contextvars.unbind_contextvars("request_id")
            self._record(scope, path, state.status, time.perf_counter() - start)

    async def _limited(
        self,
        scope: Scope,
        receive: Receive,
        exchange: _Exchange,
        headers: dict[bytes, bytes],
        path: str,
    ) -> None:
        """Rate limit, concurrency limit and body cap, in that order."""
        send = exchange.forward
        if path.startswith("/api/"):
            identity = client_identity(scope["headers"], scope.get("client"))
            counter = self.kernel.rate_counter
            decision = (
                await counter.hit(identity, self.limit, self.window)
                if counter is not None
                else await hit(self.kernel.cache, identity, self.limit, self.window)
            )
            if decision is not None:
                if not decision.allowed:
                    await _rate_limited(scope, decision, self.limit, self.window)(
                        scope, receive, send
                    )
                    return
                exchange.extra = [
                    (k.lower().encode(), v.encode()) for k, v in decision.headers().items()
                ]
        if path not in _EXEMPT:
            if self.in_flight >= self.concurrency:
                await _busy(scope)(scope, receive, send)
                return
            self.in_flight += 1
            metrics.HTTP_IN_FLIGHT.inc()
            exchange.holding = True
        if path.startswith(self.body_exempt):
            await self.app(scope, receive, send)
            return
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_body:
            await _too_large(scope, self.max_body)(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise BodyTooLarge(self.max_body)
            return message

        try:
            await self.app(scope, limited_receive, send)
        except BodyTooLarge:  # read outside FastAPI's body parsing: answer here
            if exchange.started:
                raise
            await _too_large(scope, self.max_body)(scope, receive, send)

    def _record(self, scope: Scope, path: str, status: int, elapsed: float) -> None:
        route = route_template(scope)
        method = scope["method"]
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                metrics.HTTP_REQUESTS.labels(method, route, str(status)),
                metrics.HTTP_LATENCY.labels(method, route),
                metrics.HTTP_ERRORS.labels(method, route) if status >= 500 else None,
            )
        requests, latency, errors = children
        requests.inc()
        latency.observe(elapsed)
        if errors is not None:
            errors.inc()
        if path not in ("/healthz", "/metrics"):
            client = scope.get("client")
            self.access_log.info(
                "request",
                method=method,
                path=path,
                route=route,
                status=status,
                duration_ms=round(elapsed * 1000, 2),
                client=client[0] if client else None,
            )


class CorsForOrigins:
    """Starlette's ``CORSMiddleware``, only for requests that carry an ``Origin`` header.

    It rewrites the headers of every response, cross-origin or not — about a tenth of a
    cached read's CPU (docs/PERFORMANCE.md). Requests without ``Origin`` (servers, mobile
    apps, same-origin) go straight to the app; ``ApiMiddleware(vary_origin=True)`` adds the
    ``Vary: Origin`` they would have had, so shared caches still key on it."""

    def __init__(self, app: ASGIApp, /, **options: Any) -> None:
        self.app = app
        self.cors = CORSMiddleware(app, **options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, _ in scope["headers"]:
                if name == b"origin":
                    await self.cors(scope, receive, send)
                    return
        await self.app(scope, receive, send)


class _Exchange:
    """Per-request state shared by the pipeline's steps and its one ``send`` wrapper."""

    __slots__ = ("extra", "holding", "owner", "request_id", "send", "started", "status", "vary")

    def __init__(self, request_id: str, send: Send, owner: ApiMiddleware) -> None:
        self.request_id, self.send, self.owner = request_id, send, owner
        self.extra: list[tuple[bytes, bytes]] = []
        self.started = False
        self.holding = False
        self.status = 500
        self.vary = False

    def release(self, owner: ApiMiddleware) -> None:
        if self.holding:
            self.holding = False
            owner.in_flight -= 1
            metrics.HTTP_IN_FLIGHT.dec()

    async def forward(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            self.status = message["status"]
            headers = [
                (k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"
            ]
            if self.extra:  # rate-limit headers, unless a stricter route limit set its own
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in self.extra if name not in present]
            headers.append((b"x-request-id", self.request_id.encode()))
            if self.vary:
                headers.append((b"vary", b"Origin"))
            # an SSE stream stays open for minutes: it gives its slot back once it starts, so
            # open streams never starve ordinary requests (skills cap streams themselves)
            for name, value in headers:
                if name.lower() == b"content-type" and value.startswith(b"text/event-stream"):
                    self.release(self.owner)
            message = {**message, "headers": headers}
        await self.send(message)


def _problem(scope: Scope, status: int, code: str, title: str, detail: str, **headers: str) -> Any:
    return problem_response(
        Request(scope),
        status=status,
        code=code,
        title=title,
        detail=detail,
        headers={name.replace("_", "-"): value for name, value in headers.items()} or None,
    )


def _error_response(scope: Scope, exc: Exception) -> Any:
    """The problem for an exception that escaped the app before the response started."""
    if _is_unstorable_text(exc):
        return unstorable_text_response(Request(scope))
    if _is_unavailable(exc):
        log.warning("dependency unavailable: %s", type(exc).__name__)
        detail = "A backing service is unavailable; try again shortly."
        return _problem(
            scope, 503, "SERVICE_UNAVAILABLE", "Service unavailable", detail, Retry_After="5"
        )
    log.exception("unhandled error", exc_info=exc)
    detail = "An unexpected error occurred; quote the request_id when reporting it."
    return _problem(scope, 500, "INTERNAL_ERROR", "Internal server error", detail)


def _rate_limited(scope: Scope, decision: Any, limit: int, window: int) -> Any:
    detail = f"Rate limit of {limit} requests per {window} s exceeded."
    response = _problem(scope, 429, "RATE_LIMITED", "Too many requests", detail)
    response.headers.update(decision.headers())
    return response


def _busy(scope: Scope) -> Any:
    detail = "Too many requests in flight; retry shortly."
    return _problem(scope, 503, "SERVICE_UNAVAILABLE", "Server busy", detail, Retry_After="1")


def _too_large(scope: Scope, limit: int) -> Any:
    detail = f"Request bodies are limited to {limit} bytes."
    return _problem(scope, 413, "PAYLOAD_TOO_LARGE", "Payload too large", detail)


def route_template(scope: Scope) -> str:
    """The matched route's full path template (``/api/v1/tracks/{id}``), never the raw path,
    so metric labels stay few. FastAPI keeps the prefixed path on its effective route context."""
    context = scope.get("fastapi", {}).get("effective_route_context")
    path = getattr(context, "path", "") if context is not None else ""
    if not path:
        path = getattr(scope.get("route"), "path", "") or ""
    return path or "<unmatched>"


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once a streamed body passes the limit; FastAPI lets an
    ``HTTPException`` out of body parsing, so the app's handler renders the 413 problem."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"Request bodies are limited to {limit} bytes.")
