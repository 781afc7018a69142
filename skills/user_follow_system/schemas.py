"""API models of the follow endpoints (lists reuse user-profile's ``ProfileRead``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class FollowState(BaseModel):
    """The caller's relation to one user, as it is after the request.

    ``POST`` and ``DELETE`` answer with the same state however often they are repeated, so a
    client can retry them blindly.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"following": True, "followed_by": False, "followers_count": 1205},
                {"following": False, "followed_by": True, "followers_count": 1204},
            ]
        }
    )

    following: bool = Field(description="Whether the caller follows this user.")
    followed_by: bool = Field(description="Whether this user follows the caller back.")
    followers_count: int = Field(
        ge=0, description="The user's followers (banned and deleted accounts not counted)."
    )
