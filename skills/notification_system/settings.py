"""Settings of ``notification-system`` (``SOUNDHIVE_NOTIFICATIONS_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class NotificationSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SOUNDHIVE_NOTIFICATIONS_", env_file=".env", extra="ignore"
    )

    fanout_batch: int = Field(default=1000, ge=1, le=10_000)
    """Followers notified per ``fan_out`` job: one short transaction each, so a big account's
    upload never holds one giant transaction (or one giant lock set)."""
    ping_seconds: float = Field(default=15.0, gt=0)
    """Heartbeat on open streams: proxies close connections idle for ~30-60 s."""
    max_streams: int = Field(default=3, ge=1)
    """Open ``/notifications/stream`` connections per user (a few tabs and devices)."""
    replay_limit: int = Field(default=500, ge=1)
    """Most notifications replayed after ``Last-Event-ID``; older ones are for the list."""
    poll_seconds: float = Field(default=2.0, gt=0)
    """How often a stream polls the database while Redis (pub/sub) is unavailable."""
