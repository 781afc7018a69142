"""Domain exceptions and RFC 9457 problem+json responses for every error path."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("soundhive.errors")

_HTTP_CODES: dict[int, str] = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    409: "DUPLICATE_RESOURCE",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    416: "RANGE_NOT_SATISFIABLE",
    422: "VALIDATION_FAILED",
    429: "RATE_LIMITED",
    500: "INTERNAL_ERROR",
    503: "SERVICE_UNAVAILABLE",
}


class DomainError(Exception):
    """A failure a client can act on; rendered as a problem with ``code`` and ``status``."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "BAD_REQUEST"
    title: ClassVar[str] = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.instance_code = code or self.code
        self.headers = headers or {}
        self.extra = extra


class BadRequest(DomainError):
    pass


class Unauthorized(DomainError):
    status, code, title = 401, "UNAUTHORIZED", "Unauthorized"

    def __init__(self, detail: str | None = None, **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="soundhive"'})
        super().__init__(detail, **kw)


class Forbidden(DomainError):
    status, code, title = 403, "FORBIDDEN", "Forbidden"


class AccountBanned(Forbidden):
    code, title = "ACCOUNT_BANNED", "Account banned"


class NotFound(DomainError):
    status, code, title = 404, "NOT_FOUND", "Not found"


class Conflict(DomainError):
    status, code, title = 409, "DUPLICATE_RESOURCE", "Duplicate resource"


class ValidationFailed(DomainError):
    status, code, title = 422, "VALIDATION_FAILED", "Validation failed"


class PayloadTooLarge(DomainError):
    status, code, title = 413, "PAYLOAD_TOO_LARGE", "Payload too large"


class UnsupportedMediaType(DomainError):
    status, code, title = 415, "UNSUPPORTED_MEDIA_TYPE", "Unsupported media type"


class RateLimited(DomainError):
    status, code, title = 429, "RATE_LIMITED", "Too many requests"


class ServiceUnavailable(DomainError):
    status, code, title = 503, "SERVICE_UNAVAILABLE", "Service unavailable"


class ProblemError(BaseModel):
    """One entry of a validation problem's ``errors``."""

    loc: list[str]
    msg: str


class Problem(BaseModel):
    """The RFC 9457 body of every error response (``application/problem+json``); some
    problems add members of their own, so the schema allows extra ones."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    code: str
    request_id: str | None = None
    instance: str | None = None
    errors: list[ProblemError] | None = None


def problem_type(code: str) -> str:
    """A stable URI per problem code, documented in docs/errors.md."""
    return "urn:soundhive:problem:" + code.lower().replace("_", "-")


def problem_doc(status: int, code: str, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    """An OpenAPI ``responses`` entry documenting one problem with an example body, for a
    route's ``responses={404: problem_doc(404, "TRACK_NOT_FOUND", "Not found", "…")}``."""
    example = {
        "type": problem_type(code),
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "request_id": "5f0c6a1e9b2d4c7a8e3f1b0d2c4a6e8f",
        **extra,
    }
    return {"description": title, "content": {PROBLEM_JSON: {"example": example}}}


def problem_doc_of(
    status: int, code: str, detail: str, description: str | None = None
) -> dict[str, Any]:
    """:func:`problem_doc` with the title derived from the code (``PLAYLIST_FULL`` → "Playlist
    full"); ``description`` replaces the title as the entry's text, e.g. to name the other
    codes one status may carry."""
    entry = problem_doc(status, code, code.replace("_", " ").capitalize(), detail)
    if description is not None:
        entry["description"] = description
    return entry


def problem_response(
    request: Request | None,
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """Build the problem+json response every error path goes through."""
    body: dict[str, Any] = {
        "type": problem_type(code),
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "request_id": request_id_of(request),
    }
    if request is not None:
        body["instance"] = request.url.path
    body.update(extra)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def request_id_of(request: Request | None) -> str | None:
    if request is None:
        return None
    return request.scope.get("state", {}).get("request_id")


def _is_unavailable(exc: BaseException) -> bool:
    """Infrastructure faults (database, Redis, broker, storage down) become 503, not 500."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    if isinstance(exc, (RedisConnectionError, RedisTimeoutError, PoolTimeout, ConnectionError)):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    import psycopg

    return isinstance(getattr(exc, "orig", exc), psycopg.OperationalError)


def _is_unstorable_text(exc: BaseException) -> bool:
    """Text no validator caught and PostgreSQL cannot store: NUL characters (psycopg refuses
    them before sending), lone surrogates (JSON ``"\\ud800"``: not encodable as UTF-8), or
    characters the database encoding cannot hold. The client sent it: 422, never 500."""
    import psycopg

    orig = getattr(exc, "orig", exc)
    if isinstance(orig, UnicodeEncodeError):
        return "surrogates not allowed" in str(orig)
    if not isinstance(orig, psycopg.DataError):
        return False
    return "NUL (0x00)" in str(orig) or getattr(orig, "sqlstate", None) in ("22P05", "22021")


def unstorable_text_response(request: Request | None) -> JSONResponse:
    """The kernel's safety net for text no skill validator caught (see ``_is_unstorable_text``)."""
    message = "text must not contain NUL (\\u0000), lone surrogates or other unstorable characters"
    return problem_response(
        request,
        status=422,
        code="VALIDATION_FAILED",
        title="Validation failed",
        detail="The request is not valid; see 'errors'.",
        errors=[{"loc": [], "msg": message}],
    )


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path: Starlette's 405 names only the first
    route that matched the path, but RFC 9110 wants all of them in ``Allow``."""
    from fastapi.routing import iter_route_contexts

    path = request.scope["path"]
    return sorted(
        {
            method
            for route in iter_route_contexts(request.app.routes)
            if getattr(route, "path_regex", None) is not None and route.path_regex.match(path)
            for method in route.methods or ()
        }
    )


def install_error_handlers(app: FastAPI) -> None:
    """Route every exception to a problem+json body with ``code`` and ``request_id``."""

    async def domain_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DomainError)
        return problem_response(
            request,
            status=exc.status,
            code=exc.instance_code,
            title=exc.title,
            detail=exc.detail,
            headers=exc.headers,
            **exc.extra,
        )

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = _HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
        if exc.status_code == 404 and exc.detail == "Not Found":
            detail = f"No route matches {request.method} {request.url.path}."
        else:
            detail = str(exc.detail)
        title = code.replace("_", " ").capitalize()
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request))
        return problem_response(
            request,
            status=exc.status_code,
            code=code,
            title=title,
            detail=detail,
            headers=headers,
        )

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {"loc": [str(part) for part in err.get("loc", ())], "msg": err.get("msg", "")}
            for err in exc.errors()
        ]
        return problem_response(
            request,
            status=422,
            code="VALIDATION_FAILED",
            title="Validation failed",
            detail="The request is not valid; see 'errors'.",
            errors=errors,
        )

    async def unhandled(request: Request, exc: Exception) -> JSONResponse:
        if _is_unstorable_text(exc):
            return unstorable_text_response(request)
        if _is_unavailable(exc):
            log.warning("dependency unavailable: %s", type(exc).__name__)
            return problem_response(
                request,
                status=503,
                code="SERVICE_UNAVAILABLE",
                title="Service unavailable",
                detail="A backing service is unavailable; try again shortly.",
                headers={"Retry-After": "5"},
            )
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(
            request,
            status=500,
            code="INTERNAL_ERROR",
            title="Internal server error",
            detail="An unexpected error occurred; quote the request_id when reporting it.",
        )

    app.add_exception_handler(DomainError, domain_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, unhandled)
