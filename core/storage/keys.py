"""Object keys, content types and download names: validated before any backend sees them.

Keys are opaque ``/``-separated paths such as ``uploads/<user>/<uuid>``. Every segment
starts with a letter, digit, ``_`` or ``-`` and uses ``[A-Za-z0-9._-]`` only, so ``..``,
absolute paths, backslashes, NUL, percent escapes and hidden files are impossible by
construction — a key maps to a file under the local root and nowhere else.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

from core.errors import BadRequest, PayloadTooLarge
from core.storage.errors import InvalidObjectKey

MAX_KEY_LENGTH = 512
_SEGMENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}")
KEY_PATTERN = f"^{_SEGMENT.pattern}(/{_SEGMENT.pattern})*$"
"""``validate_key``'s segment rule as one expression, for the OpenAPI document."""
_CONTENT_TYPE = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
    r"(\s*;\s*[A-Za-z0-9!#$&^_.+-]+=(\"[ !#-~]*\"|[A-Za-z0-9!#$&^_.+-]+))*"
)
_INLINE_TYPES = ("audio/", "image/png", "image/jpeg", "image/gif", "image/webp", "image/avif")


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe object key, else raise ``InvalidObjectKey``."""
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidObjectKey(f"object keys are 1 to {MAX_KEY_LENGTH} characters")
    if not all(_SEGMENT.fullmatch(segment) for segment in key.split("/")):
        raise InvalidObjectKey(
            "object keys are '/'-separated segments of [A-Za-z0-9._-] (up to 200 characters) "
            "that do not start with '.'"
        )
    return key


def validate_prefix(prefix: str) -> str:
    """A listing prefix: empty, or a key prefix (it may end with ``/`` or mid-segment)."""
    if prefix:
        validate_key(prefix.removesuffix("/"))
    return prefix


def validate_content_type(content_type: str) -> str:
    """A single-line ``type/subtype[; param=value]``, lower-cased type and subtype."""
    if not isinstance(content_type, str) or not _CONTENT_TYPE.fullmatch(content_type.strip()):
        raise BadRequest("content type must look like 'audio/mpeg'", code="INVALID_CONTENT_TYPE")
    media, _, params = content_type.strip().partition(";")
    return media.lower() + (";" + params if params else "")


def same_content_type(sent: str | None, signed: str) -> bool:
    """Header comparison the way S3 does it for signed headers, minus case and spacing."""
    return bool(sent) and _squash(sent or "") == _squash(signed)


def _squash(value: str) -> str:
    return value.replace(" ", "").lower()


def inline_safe(content_type: str) -> bool:
    """Types a browser may render from our origin; anything else is served as a download."""
    return content_type.lower().startswith(_INLINE_TYPES) or content_type == (
        "application/octet-stream"
    )


def clean_download_name(name: str) -> str:
    """Drop control characters, quotes and path separators; keep the name readable."""
    cleaned = "".join(
        ch
        for ch in unicodedata.normalize("NFC", name)
        if unicodedata.category(ch)[0] != "C" and ch not in '"\\/'
    ).strip(" .")
    return cleaned[:200] or "download"


def content_disposition(name: str, disposition: str = "attachment") -> str:
    """RFC 6266 header value with an ASCII fallback and an RFC 8187 UTF-8 name."""
    name = clean_download_name(name)
    fallback = name.encode("ascii", "replace").decode().replace("?", "_")
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def check_length(content_length: int, maximum: int) -> None:
    """A presigned upload's size: a non-negative integer within ``max_upload_bytes``."""
    if not isinstance(content_length, int) or content_length < 0:
        raise ValueError("content_length must be a non-negative integer")
    if content_length > maximum:
        raise PayloadTooLarge(f"Uploads are limited to {maximum} bytes.")


def expiry_seconds(expires_in: int | None, default: int) -> int:
    seconds = default if expires_in is None else expires_in
    if seconds < 1 or seconds > 7 * 24 * 3600:
        raise ValueError("expires_in must be between 1 second and 7 days (the S3 maximum)")
    return seconds
