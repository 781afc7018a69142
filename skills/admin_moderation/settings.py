"""Settings of ``admin-moderation`` (``SOUNDHIVE_MODERATION_*``)."""

from __future__ import annotations

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.settings import parse_rate


class ModerationSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SOUNDHIVE_MODERATION_", env_file=".env", extra="ignore"
    )

    report_rate: str = "10/hour"
    """``POST /reports`` budget per caller (``"10/hour"``, ``"3/minute"`` …): reports cost a
    moderator's time, so one account must not be able to flood the queue."""

    @field_validator("report_rate")
    @classmethod
    def _valid_rate(cls, value: str) -> str:
        parse_rate(value)  # fail at start-up, not on the first report
        return value
