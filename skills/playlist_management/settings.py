"""Settings of ``playlist-management`` (``SOUNDHIVE_PLAYLIST_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class PlaylistSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SOUNDHIVE_PLAYLIST_", env_file=".env", extra="ignore"
    )

    max_tracks: int = Field(default=1000, ge=1, le=10_000)
    """Entries one playlist may hold; adding (or forking) beyond it is 422 ``PLAYLIST_FULL``.
    Spotify allows 10,000; 1,000 keeps the detail view (every entry, one response) small."""
