"""API models of recommendations: every item says why it is there."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from core.pagination import Page
from skills.music_streaming_basic.api import TrackRead

ReasonKind = Literal["co_liked", "tag_affinity", "shared_tags", "trending"]


class Reason(BaseModel):
    """Why an item was picked: the strongest signal behind it, in words and as data."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "kind": "co_liked",
                    "text": "Listeners who liked “잔잔한 밤 산책” also liked this",
                    "tags": [],
                    "track_id": "5f0c6a4e-8d1b-4c59-9a57-0b7f0e7c1a11",
                    "listeners": 4,
                }
            ]
        }
    )

    kind: ReasonKind
    text: str
    tags: list[str] = Field(default=[], description="the shared or liked tags (tag reasons)")
    track_id: uuid.UUID | None = Field(
        default=None, description="co_liked: the track of yours that led here"
    )
    listeners: int | None = Field(default=None, description="co_liked: how many listeners")


class Recommendation(BaseModel):
    track: TrackRead
    score: float = Field(description="relative, for this list only (higher is better)")
    reason: Reason


RecommendationPage = Page[Recommendation]
