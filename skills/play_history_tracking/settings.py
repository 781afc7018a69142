"""Settings of ``play-history-tracking`` (``SOUNDHIVE_PLAYS_*``)."""

from __future__ import annotations

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.settings import parse_rate


class PlaySettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SOUNDHIVE_PLAYS_", env_file=".env", extra="ignore"
    )

    rate_limit: str = "120/minute"
    """``POST /tracks/{id}/play`` per caller (token, or client IP when anonymous), on top of
    the global limit: two plays a second is already more than any real player sends."""

    @field_validator("rate_limit")
    @classmethod
    def _valid_rate(cls, value: str) -> str:
        parse_rate(value)
        return value
