"""Request and response models of the three-step upload."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from skills.music_streaming_basic.api import ArtistName, Description, Mood, Tags, Title, Visibility


class InitiateUpload(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"filename": "night-walk.mp3", "content_type": "audio/mpeg", "file_size": 7340032}
            ]
        },
    )

    filename: Annotated[str, Field(min_length=1, max_length=255)]
    content_type: Annotated[str, Field(min_length=3, max_length=100)]
    file_size: Annotated[int, Field(gt=0, description="Exact size in bytes; the PUT must match.")]


class UploadTicket(BaseModel):
    """Where and how to send the bytes (step 2)."""

    upload_id: uuid.UUID
    upload_url: str
    method: str = "PUT"
    headers: dict[str, str]
    expires_in: int


class FinalizeUpload(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "upload_id": "3f6c1a52-7b1e-4a57-9f3c-5d8e2b1a0c44",
                    "title": "잔잔한 밤 산책",
                    "artist_name": "Minji",
                    "tags": ["lofi", "night walk"],
                    "mood": "calm",
                    "visibility": "public",
                }
            ]
        },
    )

    upload_id: uuid.UUID
    title: Title
    artist_name: ArtistName = None
    description: Description = None
    tags: Tags = []
    mood: Mood | None = None
    visibility: Visibility = "public"
