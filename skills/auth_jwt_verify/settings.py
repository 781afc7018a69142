"""The skill's own knobs. Issuer, audience, JWKS URL and algorithms are core settings
(``SOUNDHIVE_AUTH_JWKS_URL`` …); the names here are chosen not to collide with them."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class AuthJwtSettings(BaseSettings):
    """``SOUNDHIVE_AUTH_JWKS_REFETCH_COOLDOWN``, ``SOUNDHIVE_AUTH_JWKS_TIMEOUT``,
    ``SOUNDHIVE_AUTH_LEEWAY_SECONDS``."""

    model_config = SettingsConfigDict(env_prefix="SOUNDHIVE_AUTH_", env_file=".env", extra="ignore")

    jwks_refetch_cooldown: float = Field(default=30.0, ge=0)
    """Seconds between two refetches caused by an unknown ``kid`` (jose uses 30 s), so
    forged kids cannot turn the API into a load generator against the Auth Server."""
    jwks_timeout: float = Field(default=3.0, gt=0)
    """HTTP timeout for fetching the JWKS; a slow Auth Server must not hold requests long."""
    leeway_seconds: int = Field(default=30, ge=0, le=300)
    """Clock skew tolerated on ``exp``, ``nbf`` and ``iat``."""
