"""``PUT|GET|HEAD /storage/{key}``: the ``local`` backend's signed-URL endpoints.

Mounted at the site root by ``create_app`` when ``SOUNDHIVE_STORAGE=local``. Every request
carries a signature made by ``LocalStorage`` (see ``signing.py``); errors are problem+json.
Only the path is ever logged (the access log drops query strings, which hold signatures).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from email.utils import format_datetime
from typing import IO, TYPE_CHECKING, Annotated, Any

import anyio
from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from core.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from core.storage import ObjectInfo
from core.storage.errors import (
    InvalidSignature,
    ObjectExists,
    ObjectNotFound,
    RangeNotSatisfiable,
    UploadIncomplete,
    storage_failure,
)
from core.storage.keys import (
    KEY_PATTERN,
    MAX_KEY_LENGTH,
    content_disposition,
    inline_safe,
    same_content_type,
    validate_key,
)
from core.storage.local import LocalStorage, served_url

if TYPE_CHECKING:
    from core.kernel import Kernel

_CHUNK = 256 * 1024
Signed = Annotated[str | None, Query(description="Part of the signed URL; do not change.")]
# Documented (not enforced here: validate_key answers 400 INVALID_OBJECT_KEY) so clients and
# schema fuzzers know what a key looks like.
Key = Annotated[
    str,
    Path(
        description="The object key: '/'-separated segments of [A-Za-z0-9._-] not starting "
        "with '.'",
        json_schema_extra={
            "maxLength": MAX_KEY_LENGTH,
            "pattern": KEY_PATTERN,
        },
    ),
]
_ERRORS: dict[int | str, dict[str, str]] = {
    400: {"description": "Invalid key, or the body is shorter than signed"},
    403: {"description": "Invalid (INVALID_SIGNATURE) or expired (SIGNATURE_EXPIRED) URL"},
    404: {"description": "No such object"},
}


def local_storage_router(kernel: Kernel) -> APIRouter:
    router = APIRouter(prefix="/storage", tags=["storage"])

    def storage() -> LocalStorage:
        store = kernel.storage
        assert isinstance(store, LocalStorage), "storage routes need SOUNDHIVE_STORAGE=local"
        return store

    @router.put(
        "/{key:path}",
        status_code=201,
        summary="Upload an object to a signed URL (write-once; exact type and size)",
        responses={
            **_ERRORS,
            409: {"description": "The object exists"},
            413: {"description": "More bytes than signed"},
            415: {"description": "Content-Type differs from the signed one"},
        },
    )
    async def upload(
        key: Key,
        request: Request,
        expires: Signed = None,
        ct: Signed = None,
        length: Annotated[str | None, Query(alias="len", description="Signed size.")] = None,
        sig: Signed = None,
    ) -> Response:
        store = storage()
        grant = store.signer.verify("PUT", validate_key(key), request.query_params)
        if grant.length is None or not grant.content_type:
            raise InvalidSignature("This URL is not an upload URL.")
        sent_type = request.headers.get("content-type")
        if not same_content_type(sent_type, grant.content_type):
            raise UnsupportedMediaType(
                f"Content-Type must be {grant.content_type!r}, as signed; got {sent_type!r}."
            )
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                raise BadRequest("Content-Length is not a number.")
            if int(declared) > grant.length:
                raise PayloadTooLarge(f"The URL was signed for {grant.length} bytes.")
            if int(declared) < grant.length:
                raise UploadIncomplete(f"The URL was signed for exactly {grant.length} bytes.")
        if await store.head(key) is not None:
            raise ObjectExists(f"Object {key!r} already exists; uploads are write-once.")
        info = await store.receive(
            key, _body(request), content_type=grant.content_type, length=grant.length
        )
        return Response(status_code=201, headers={"ETag": f'"{info.etag}"'})

    download_doc: dict[str, Any] = dict(
        response_class=Response,
        responses={
            **_ERRORS,
            206: {"description": "The requested byte range"},
            304: {"description": "Not modified (If-None-Match)"},
            416: {"description": "Range not satisfiable"},
        },
    )

    @router.head("/{key:path}", summary="An object's headers (signed download URL)", **download_doc)
    @router.get(
        "/{key:path}",
        summary="Download or stream an object from a signed URL (Range, ETag, 304)",
        **download_doc,
    )
    async def download(
        key: Key,
        request: Request,
        expires: Signed = None,
        dl: Signed = None,
        sig: Signed = None,
    ) -> Response:
        store = storage()
        grant = store.signer.verify("GET", validate_key(key), request.query_params)
        info = await store.head(key)
        if info is None:
            raise ObjectNotFound(f"No object {key!r}.")
        headers = _object_headers(info, grant.download_name, grant.expires)
        if _matches(request.headers.get("if-none-match"), headers["ETag"]):
            return Response(status_code=304, headers=_without_body_headers(headers))
        span = _requested_range(request, info.size, headers)
        start, length = (0, info.size) if span is None else (span[0], span[1] - span[0] + 1)
        status = 200 if span is None else 206
        if span is not None:
            headers["Content-Range"] = f"bytes {span[0]}-{span[1]}/{info.size}"
        headers["Content-Length"] = str(length)
        if request.method == "HEAD":
            return Response(status_code=status, headers=headers)
        try:
            handle = await anyio.to_thread.run_sync(store.path_of(key).open, "rb")
        except FileNotFoundError:
            raise ObjectNotFound(f"No object {key!r}.") from None
        except OSError as exc:
            raise storage_failure("read", exc) from exc
        return StreamingResponse(_slice(handle, start, length), status_code=status, headers=headers)

    return router


async def _body(request: Request) -> AsyncIterator[bytes]:
    try:
        async for chunk in request.stream():
            if chunk:
                yield chunk
    except ClientDisconnect:
        raise UploadIncomplete("The client disconnected before the upload finished.") from None


def _object_headers(info: ObjectInfo, download_name: str, expires: int) -> dict[str, str]:
    """Headers for serving user content from the API's origin without letting it run:
    non-media types become downloads, nothing is sniffed, and no script may execute."""
    content_type = info.content_type or "application/octet-stream"
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": f'"{info.etag}"',
        "Cache-Control": f"private, max-age={max(0, expires - int(time.time()))}",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
    }
    if info.last_modified is not None:
        headers["Last-Modified"] = format_datetime(info.last_modified, usegmt=True)
    if not inline_safe(content_type):
        content_type = "application/octet-stream"
        headers["Content-Disposition"] = content_disposition(download_name or "download")
    elif download_name:
        headers["Content-Disposition"] = content_disposition(download_name)
    headers["Content-Type"] = content_type
    return headers


def _without_body_headers(headers: dict[str, str]) -> dict[str, str]:
    keep = ("ETag", "Cache-Control", "Last-Modified", "Accept-Ranges")
    return {name: value for name, value in headers.items() if name in keep}


def _matches(if_none_match: str | None, etag: str) -> bool:
    """``If-None-Match`` uses the weak comparison (RFC 9110 §13.1.2)."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in if_none_match.split(","))


def _requested_range(
    request: Request, size: int, headers: dict[str, str]
) -> tuple[int, int] | None:
    """The one byte range to send (inclusive bounds), or ``None`` for the whole object.

    Per RFC 9110 §14.2 a syntactically invalid or multi-range ``Range`` is ignored (200 with
    the whole object), as is a stale ``If-Range``; a valid but unsatisfiable one is 416.
    """
    header = request.headers.get("range")
    if_range = request.headers.get("if-range")
    if header is None or (
        if_range is not None and if_range not in (headers["ETag"], headers.get("Last-Modified"))
    ):
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash or not (first.isdigit() or last.isdigit()) or (first + last).strip("0123456789"):
        return None
    if not first:  # suffix: the last N bytes
        if int(last) == 0 or size == 0:
            raise _unsatisfiable(size)
        return max(0, size - int(last)), size - 1
    start = int(first)
    end = size - 1 if not last else min(int(last), size - 1)
    if last and int(last) < start:
        return None
    if start >= size:
        raise _unsatisfiable(size)
    return start, end


def _unsatisfiable(size: int) -> RangeNotSatisfiable:
    return RangeNotSatisfiable(
        f"The object has {size} bytes.", headers={"Content-Range": f"bytes */{size}"}
    )


async def _slice(handle: IO[bytes], start: int, length: int) -> AsyncIterator[bytes]:
    """Send ``length`` bytes from ``start`` in chunks; memory stays bounded. The file is
    closed synchronously, so a cancelled transfer (client gone) still closes it."""
    try:
        await anyio.to_thread.run_sync(handle.seek, start)
        remaining = length
        while remaining > 0:
            chunk = await anyio.to_thread.run_sync(handle.read, min(_CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk
    finally:
        handle.close()


class ServedUrlMiddleware:
    """Remembers the base URL each request reached the API at, so signed URLs made while
    serving it are absolute even without ``SOUNDHIVE_PUBLIC_URL`` (SPEC §3: "defaults to the
    served address"). It trusts the Host header, so production should set the public URL."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._bases: dict[tuple[Any, ...], str] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = next((v for k, v in scope["headers"] if k == b"host"), None)
        key = (scope.get("scheme"), host, scope.get("server"), scope.get("root_path", ""))
        base = self._bases.get(key)
        if base is None:  # parsing a URL per request showed in profiles; hosts are few
            base = str(Request(scope).base_url).rstrip("/")
            if len(self._bases) < 1024:
                self._bases[key] = base
        token = served_url.set(base)
        try:
            await self.app(scope, receive, send)
        finally:
            served_url.reset(token)
