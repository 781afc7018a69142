"""HTTP endpoints under ``/api/v1/users/{user_id}`` (SPEC §5 "Users / follow"); rules live in
the service. The caller can only create or remove *its own* edges: the follower is always the
token's account, so there is no object another principal could own."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Path

from core.auth import MaybePrincipal
from core.db import SessionDep
from core.errors import problem_doc
from core.kernel import KernelDep
from core.pagination import Cursor, Limit, Page
from skills.user_follow_system import service
from skills.user_follow_system.schemas import FollowState
from skills.user_profile.api import ActiveUser, CurrentUser, ProfileRead

if TYPE_CHECKING:
    pass

TAG = "user-follow-system"


UserId = Annotated[uuid.UUID, Path(description="The other user's profile id (UUID).")]


UNAUTHORIZED = problem_doc(401, "UNAUTHORIZED", "Unauthorized", "Authentication required.")
BANNED = problem_doc(
    403, "ACCOUNT_BANNED", "Account banned", "This account is banned and cannot make changes."
)
DELETED = problem_doc(403, "ACCOUNT_DELETED", "Account deleted", "This account has been deleted.")
NOT_FOUND = problem_doc(
    404, "USER_NOT_FOUND", "User not found", "No user with id 0b9f6c2e-5d1a-4a57-9a43-8f0f3f3c1e21."
)
SELF = problem_doc(
    422, "CANNOT_FOLLOW_SELF", "Cannot follow yourself", "You cannot follow yourself."
)
BAD_CURSOR = problem_doc(
    422, "INVALID_CURSOR", "Validation failed", "The cursor is not valid for this list."
)
FOLLOW_OK = {
    "description": "The caller's relation to the user after the request (same on repeats).",
    "content": {
        "application/json": {
            "examples": {
                "following": {
                    "summary": "now following",
                    "value": {"following": True, "followed_by": False, "followers_count": 1205},
                },
                "not_following": {
                    "summary": "not following",
                    "value": {"following": False, "followed_by": True, "followers_count": 1204},
                },
            }
        }
    },
}
WRITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: FOLLOW_OK,
    401: UNAUTHORIZED,
    403: BANNED,
    404: NOT_FOUND,
    422: SELF,
}

router = APIRouter(prefix="/users", tags=[TAG])


@router.post(
    "/{user_id}/follow",
    response_model=FollowState,
    summary="Follow a user (idempotent)",
    description="Following someone you already follow changes nothing and answers the same "
    "state. 422 `CANNOT_FOLLOW_SELF` for yourself; 404 `USER_NOT_FOUND` for an unknown, "
    "banned or deleted user; 403 `ACCOUNT_BANNED` if the caller is banned. Emits "
    "`user.followed` when a follow was created.",
    responses=WRITE_RESPONSES,
)
async def follow(
    user_id: UserId, user: ActiveUser, session: SessionDep, kernel: KernelDep
) -> FollowState:
    return await service.follow(kernel, session, user.id, user_id)


@router.delete(
    "/{user_id}/follow",
    response_model=FollowState,
    summary="Unfollow a user (idempotent)",
    description="Unfollowing someone you do not follow changes nothing and answers the same "
    "state. Same errors as following. Emits `user.unfollowed` when a follow was removed.",
    responses=WRITE_RESPONSES,
)
async def unfollow(
    user_id: UserId, user: ActiveUser, session: SessionDep, kernel: KernelDep
) -> FollowState:
    return await service.unfollow(kernel, session, user.id, user_id)


@router.get(
    "/{user_id}/follow",
    response_model=FollowState,
    summary="Whether the caller follows a user (and is followed back)",
    description="For a profile page's Follow button and 'follows you' badge. Banned callers "
    "may read. For yourself both flags are false.",
    responses={200: FOLLOW_OK, 401: UNAUTHORIZED, 403: DELETED, 404: NOT_FOUND},
)
async def follow_state(user_id: UserId, user: CurrentUser, session: SessionDep) -> FollowState:
    return await service.state(session, user.id, user_id)


LIST_RESPONSES: dict[int | str, dict[str, Any]] = {404: NOT_FOUND, 422: BAD_CURSOR}


@router.get(
    "/{user_id}/followers",
    response_model=Page[ProfileRead],
    summary="Who follows this user, newest follow first",
    description="Cursor-paginated (`limit`, `cursor` from the previous `next_cursor`). Banned "
    "and deleted accounts are not listed. 404 if the user itself is not visible to the caller "
    "(moderators and the owner still see a banned account's lists).",
    responses=LIST_RESPONSES,
)
async def followers(
    user_id: UserId,
    session: SessionDep,
    viewer: MaybePrincipal,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[ProfileRead]:
    items, next_cursor = await service.list_profiles(
        session, user_id, "followers", viewer, cursor=cursor, limit=limit
    )
    return Page[ProfileRead](items=items, next_cursor=next_cursor)


@router.get(
    "/{user_id}/following",
    response_model=Page[ProfileRead],
    summary="Whom this user follows, newest follow first",
    description="Same paging and visibility rules as the followers list.",
    responses=LIST_RESPONSES,
)
async def following(
    user_id: UserId,
    session: SessionDep,
    viewer: MaybePrincipal,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[ProfileRead]:
    items, next_cursor = await service.list_profiles(
        session, user_id, "following", viewer, cursor=cursor, limit=limit
    )
    return Page[ProfileRead](items=items, next_cursor=next_cursor)
