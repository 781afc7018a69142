"""API models: what a profile looks like on the wire and what a client may change.

Validation lives here so every rule surfaces as a 422 ``VALIDATION_FAILED`` problem with
``errors: [{loc, msg}]`` through the kernel's request-validation handler.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    TypeAdapter,
    ValidationError,
)
from pydantic_core import PydanticCustomError

HANDLE_MIN, HANDLE_MAX = 3, 30
DISPLAY_NAME_MAX = 80
BIO_MAX = 500
AVATAR_URL_MAX = 2048

HANDLE_RE = re.compile(r"^[a-z0-9_][a-z0-9_.-]*[a-z0-9_]$")
RESERVED_HANDLES = frozenset(
    {
        "about",
        "account",
        "accounts",
        "admin",
        "administrator",
        "anonymous",
        "api",
        "app",
        "auth",
        "by-handle",
        "discover",
        "docs",
        "everyone",
        "explore",
        "feed",
        "help",
        "login",
        "logout",
        "me",
        "mod",
        "moderator",
        "moderators",
        "new",
        "notifications",
        "null",
        "official",
        "playlists",
        "register",
        "root",
        "search",
        "security",
        "settings",
        "signin",
        "signup",
        "staff",
        "support",
        "system",
        "tags",
        "tracks",
        "undefined",
        "user",
        "users",
        "www",
    }
)
"""Handles nobody may take: route words and names that impersonate the service or its staff."""
BRAND = "soundhive"

# Bidirectional overrides/isolates let a name render as something else (spoofing).
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_URL = TypeAdapter(AnyHttpUrl)


def _has_control(value: str, allowed: str = "") -> bool:
    return any(
        (ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 or ch in _BIDI_CONTROLS) and ch not in allowed
        for ch in value
    )


def handle_problem(handle: str) -> str | None:
    """Why ``handle`` (already lower-case) cannot be used, or ``None`` if it can."""
    if not HANDLE_MIN <= len(handle) <= HANDLE_MAX:
        return f"must be {HANDLE_MIN}-{HANDLE_MAX} characters long"
    if not handle.isascii() or not HANDLE_RE.match(handle):
        return (
            "may contain only a-z, 0-9, '_', '.' and '-', and must start and end with a "
            "letter, digit or '_'"
        )
    if handle in RESERVED_HANDLES or BRAND in handle:
        return "is reserved"
    return None


def normalize_handle(value: str) -> str:
    """Lower-case (ASCII only, so look-alike Unicode never folds into a taken name) and check."""
    handle = value.lower() if value.isascii() else value
    problem = handle_problem(handle)
    if problem:
        raise PydanticCustomError("handle_invalid", "handle {problem}", {"problem": problem})
    return handle


def check_display_name(value: str) -> str:
    value = value.strip()
    if not value:
        raise PydanticCustomError("display_name_blank", "display_name must not be blank")
    if len(value) > DISPLAY_NAME_MAX:
        raise PydanticCustomError(
            "display_name_too_long",
            "display_name must be at most {max} characters",
            {"max": DISPLAY_NAME_MAX},
        )
    if _has_control(value):
        raise PydanticCustomError(
            "display_name_control", "display_name must not contain control characters"
        )
    return value


def check_bio(value: str | None) -> str | None:
    if value is None:
        return None
    if len(value) > BIO_MAX:
        raise PydanticCustomError(
            "bio_too_long", "bio must be at most {max} characters", {"max": BIO_MAX}
        )
    if _has_control(value, allowed="\n\t"):
        raise PydanticCustomError(
            "bio_control", "bio must not contain control characters other than newline and tab"
        )
    return value or None


def check_avatar_url(value: str | None) -> str | None:
    """An absolute http(s) URL, kept exactly as sent (no normalisation surprises)."""
    if value is None or value == "":
        return None
    if len(value) > AVATAR_URL_MAX:
        raise PydanticCustomError(
            "avatar_url_too_long",
            "avatar_url must be at most {max} characters",
            {"max": AVATAR_URL_MAX},
        )
    if _has_control(value) or any(ch.isspace() for ch in value):
        raise PydanticCustomError("avatar_url_invalid", "avatar_url must not contain whitespace")
    not_url = PydanticCustomError("avatar_url_invalid", "avatar_url must be an http(s) URL")
    try:
        url = _URL.validate_python(value)
    except ValidationError:
        raise not_url from None
    if url.scheme not in ("http", "https") or not url.host or not urlsplit(value).hostname:
        raise not_url
    return value


def _as_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, PlainSerializer(_as_utc, return_type=datetime)]
"""RFC 3339 in UTC whatever the database session's time zone."""

Handle = Annotated[str, AfterValidator(normalize_handle)]
DisplayName = Annotated[str, AfterValidator(check_display_name)]
Bio = Annotated[str | None, AfterValidator(check_bio)]
AvatarUrl = Annotated[str | None, AfterValidator(check_avatar_url)]

_PROFILE_EXAMPLE: dict[str, Any] = {
    "id": "0b9f6c2e-5d1a-4a57-9a43-8f0f3f3c1e21",
    "handle": "dj_nova",
    "display_name": "DJ Nova",
    "bio": "Deep house from Lisbon.",
    "avatar_url": "https://cdn.example.com/avatars/dj_nova.png",
    "followers_count": 1204,
    "following_count": 87,
    "tracks_count": 23,
    "created_at": "2026-03-01T12:00:00Z",
    "updated_at": "2026-03-02T08:30:00Z",
}


class ProfileRead(BaseModel):
    """A profile as anyone allowed to see it sees it (never the email or the auth ``sub``)."""

    model_config = ConfigDict(
        from_attributes=True, json_schema_extra={"examples": [_PROFILE_EXAMPLE]}
    )

    id: uuid.UUID
    handle: str
    display_name: str
    bio: str | None = None
    avatar_url: str | None = None
    followers_count: int = 0
    following_count: int = 0
    tracks_count: int = 0
    created_at: UtcDatetime
    updated_at: UtcDatetime


class MeRead(ProfileRead):
    """The caller's own profile: adds what only its owner may see."""

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [{**_PROFILE_EXAMPLE, "email": "nova@example.com", "is_banned": False}]
        },
    )

    email: str | None = None
    is_banned: bool = False


class ProfileUpdate(BaseModel):
    """The fields a user may change. Anything else (counts, ``id``, ``sub``, ban state) is
    refused with 422 rather than silently dropped, so typos and privilege probes are visible.

    Omitted fields stay as they are; ``bio`` / ``avatar_url`` may be ``null`` (or ``""``) to
    clear them; ``handle`` and ``display_name`` cannot be cleared.
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"handle": "dj_nova", "display_name": "DJ Nova", "bio": "Deep house."},
                {"avatar_url": None},
            ]
        },
    )

    # Not Optional, so an explicit null is refused (and the schema says so); the unvalidated
    # None default only marks "not sent" and never reaches changes().
    handle: Handle = Field(  # type: ignore[assignment]
        default=None,
        description="3-30 characters of a-z 0-9 _ . -, starting and ending with a letter, "
        "digit or _; stored lower-case; unique case-insensitively; some words are reserved.",
    )
    display_name: DisplayName = Field(  # type: ignore[assignment]
        default=None, description="1-80 characters, no control characters; trimmed."
    )
    bio: Bio = Field(default=None, description=f"At most {BIO_MAX} characters; null clears it.")
    avatar_url: AvatarUrl = Field(
        default=None,
        description=f"An absolute http(s) URL of at most {AVATAR_URL_MAX} characters; null clears.",
    )

    def changes(self) -> dict[str, Any]:
        """Only the fields the client sent, so PATCH never touches the others."""
        return {name: getattr(self, name) for name in self.model_fields_set}
