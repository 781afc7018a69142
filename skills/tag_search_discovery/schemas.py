"""API models of discovery: search pages, tag counts, the mood vocabulary."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from core.pagination import Page
from skills.music_streaming_basic.api import MOODS, TrackRead

Sort = Literal["relevance", "latest", "popular", "trending"]
ListSort = Literal["latest", "popular", "trending"]

MOOD_DESCRIPTIONS: dict[str, str] = {
    "calm": "quiet, slow, little movement",
    "chill": "relaxed, laid-back (lo-fi, downtempo)",
    "dark": "brooding, minor-key, tense",
    "dreamy": "hazy, washed-out, ambient",
    "energetic": "driving, high tempo",
    "epic": "big, cinematic, building",
    "focus": "steady background for work or study",
    "happy": "bright, cheerful",
    "melancholic": "wistful, bittersweet",
    "party": "made for dancing with others",
    "romantic": "tender, intimate",
    "sad": "grief, heartbreak",
    "uplifting": "hopeful, rising",
    "aggressive": "hard, loud, confrontational",
}
"""One line per mood of music-streaming-basic's ``MOODS`` (the vocabulary tracks accept)."""


class SearchPage(Page[TrackRead]):
    """A page of search results. ``fuzzy`` is true when nothing matched exactly and the items
    are typo-tolerant (trigram) matches instead — a frontend can say "showing similar"."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": TrackRead.model_config["json_schema_extra"]["examples"],  # type: ignore[index]
                    "next_cursor": "c2lnbmVkLWN1cnNvcg",
                    "fuzzy": False,
                }
            ]
        }
    )

    fuzzy: bool = False


class TagCount(BaseModel):
    """A tag and how many listable tracks carry it."""

    name: str = Field(examples=["lofi"])
    track_count: int = Field(examples=[1280])


class Mood(BaseModel):
    name: str = Field(examples=["chill"])
    description: str = Field(examples=[MOOD_DESCRIPTIONS["chill"]])


class MoodList(BaseModel):
    """The mood vocabulary: the only values ``mood`` accepts on tracks and in search."""

    items: list[Mood]


def mood_list() -> MoodList:
    return MoodList(
        items=[Mood(name=name, description=MOOD_DESCRIPTIONS.get(name, "")) for name in MOODS]
    )
