"""HTTP endpoints under ``/api/v1/users`` (SPEC §5 "Users"): thin, rules live in the service."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Body, Path, Response, status

from core.auth import MaybePrincipal
from core.db import SessionDep
from core.errors import problem_doc
from core.kernel import KernelDep
from skills.user_profile import service
from skills.user_profile.api import ActiveUser, CurrentUser
from skills.user_profile.schemas import MeRead, ProfileRead, ProfileUpdate

if TYPE_CHECKING:
    pass


UNAUTHORIZED = problem_doc(401, "UNAUTHORIZED", "Unauthorized", "Authentication required.")
DELETED = problem_doc(403, "ACCOUNT_DELETED", "Account deleted", "This account has been deleted.")
BANNED = problem_doc(
    403, "ACCOUNT_BANNED", "Account banned", "This account is banned and cannot make changes."
)
NOT_FOUND = problem_doc(404, "USER_NOT_FOUND", "User not found", "No user with that id.")
TAKEN = problem_doc(409, "DUPLICATE_RESOURCE", "Duplicate resource", "The handle is already taken.")
INVALID = {
    "description": "Validation failed",
    "content": {
        "application/problem+json": {
            "example": {
                "type": "urn:soundhive:problem:validation-failed",
                "title": "Validation failed",
                "status": 422,
                "detail": "The request is not valid; see 'errors'.",
                "code": "VALIDATION_FAILED",
                "errors": [{"loc": ["body", "handle"], "msg": "handle is reserved"}],
            }
        }
    },
}

router = APIRouter(prefix="/users", tags=["user-profile"])


@router.get(
    "/me",
    response_model=MeRead,
    summary="The caller's own profile (created on first call)",
    responses={401: UNAUTHORIZED, 403: DELETED},
)
async def get_me(user: CurrentUser) -> MeRead:
    return MeRead.model_validate(user)


@router.patch(
    "/me",
    response_model=MeRead,
    summary="Change handle, display name, bio or avatar",
    description="Send only the fields to change. Other fields (counts, id, …) are refused.",
    responses={401: UNAUTHORIZED, 403: BANNED, 409: TAKEN, 422: INVALID},
)
async def patch_me(
    user: ActiveUser,
    update: Annotated[ProfileUpdate, Body()],
    session: SessionDep,
    kernel: KernelDep,
) -> MeRead:
    row = await service.update_profile(kernel, session, user.id, update.changes())
    return MeRead.model_validate(row)


@router.delete(
    "/me",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete the caller's account (soft delete)",
    description="The profile disappears for everyone; the account cannot be used afterwards.",
    responses={401: UNAUTHORIZED, 403: BANNED},
)
async def delete_me(user: ActiveUser, session: SessionDep, kernel: KernelDep) -> Response:
    await service.delete_profile(kernel, session, user.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/by-handle/{handle}",
    response_model=ProfileRead,
    summary="A profile by its handle (case-insensitive)",
    responses={404: NOT_FOUND},
)
async def get_by_handle(
    handle: Annotated[str, Path(description="The handle, any case.", examples=["DJ_Nova"])],
    session: SessionDep,
    kernel: KernelDep,
    viewer: MaybePrincipal,
) -> ProfileRead:
    return await service.read_profile_by_handle(kernel, session, handle, viewer)


@router.get(
    "/{user_id}",
    response_model=ProfileRead,
    summary="A profile by id",
    responses={404: NOT_FOUND, 422: INVALID},
)
async def get_user(
    user_id: Annotated[uuid.UUID, Path(description="The profile id (UUID).")],
    session: SessionDep,
    kernel: KernelDep,
    viewer: MaybePrincipal,
) -> ProfileRead:
    return await service.read_profile(kernel, session, user_id, viewer)
