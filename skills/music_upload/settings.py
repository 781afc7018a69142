"""Settings of ``music-upload`` (``SOUNDHIVE_UPLOAD_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class UploadSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SOUNDHIVE_UPLOAD_", env_file=".env", extra="ignore"
    )

    url_expires_seconds: int = Field(default=3600, ge=60)
    """How long the presigned PUT URL — and the upload session — stays valid."""
    max_pending_per_user: int = Field(default=10, ge=1)
    """Unfinished uploads one account may hold at once."""
    rate_limit: str = "30/30minute"
    """Initiations per account (Mastodon allows 30 media uploads per 30 minutes)."""
    max_duration_seconds: float = Field(default=3 * 3600, gt=0)
    """Longer audio is refused with ``TOO_LONG``."""
    processing_deadline_seconds: int = Field(default=900, ge=30)
    """A track still ``processing`` this long after its last attempt is retried or failed."""
    max_processing_attempts: int = Field(default=3, ge=1)
    orphan_grace_seconds: int = Field(default=6 * 3600, ge=60)
    """Stored objects no track or open upload references are deleted after this age."""
