"""``GET /api/v1/feed`` (SPEC §5 "History / feed / notifications"); rules live in the service."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from core.errors import problem_doc
from core.kernel import KernelDep
from core.pagination import Cursor, Limit, Page
from skills.activity_feed import service
from skills.music_streaming_basic.api import TrackRead
from skills.user_profile.api import CurrentUser

TAG = "activity-feed"


FEED_OK = {
    "description": "A page of the feed; `next_cursor` is null on the last page.",
    "content": {
        "application/json": {
            "examples": {
                "page": {
                    "summary": "first page, more to come",
                    "value": {
                        "items": [
                            {
                                "id": "5f0c6a4e-8d1b-4c59-9a57-0b7f0e7c1a11",
                                "owner_id": "0b8f5c9e-2f4a-4d1e-8a57-3c2d1e0f9a88",
                                "title": "잔잔한 밤 산책",
                                "artist_name": "Minji",
                                "tags": ["lofi", "night"],
                                "mood": "calm",
                                "visibility": "public",
                                "status": "ready",
                                "duration_ms": 183000,
                                "like_count": 12,
                                "created_at": "2025-05-01T21:04:11.532Z",
                                "updated_at": "2025-05-01T21:05:02.004Z",
                            }
                        ],
                        "next_cursor": "q1b2c3d4ZXhhbXBsZS1jdXJzb3I",
                    },
                },
                "empty": {
                    "summary": "follows nobody, or nobody posted",
                    "value": {"items": [], "next_cursor": None},
                },
            }
        }
    },
}
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: FEED_OK,
    401: problem_doc(401, "UNAUTHORIZED", "Unauthorized", "Authentication required."),
    403: problem_doc(403, "ACCOUNT_DELETED", "Account deleted", "This account has been deleted."),
    422: problem_doc(
        422, "INVALID_CURSOR", "Validation failed", "The cursor is not valid for this list."
    ),
}

router = APIRouter(tags=[TAG])


@router.get(
    "/feed",
    response_model=Page[TrackRead],
    summary="Home feed: tracks of the accounts you follow, newest first",
    description="Ready, public, unhidden tracks of the accounts the caller follows (banned "
    "and deleted accounts left out), ordered by upload time (`created_at`, then `id`), "
    "cursor-paginated (`limit` 1–100, default 20; `cursor` from the previous `next_cursor`). "
    "Read live from the database: an unfollow, a ban or a hidden track takes effect on the "
    "next request. Banned callers may read.",
    responses=RESPONSES,
)
async def home_feed(
    user: CurrentUser,
    kernel: KernelDep,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> dict[str, Any]:
    # A plain dict: ``response_model`` validates and serialises it once.
    return await service.home_feed(kernel, user.id, cursor=cursor, limit=limit)
