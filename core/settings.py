"""Configuration from ``SOUNDHIVE_*`` environment variables, ``.env`` and an optional TOML file.

Production refuses unsafe combinations here, before anything starts.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

Environment = Literal["dev", "test", "staging", "prod"]
DEV_CORS_ORIGINS = ["http://localhost:3000", "http://localhost:5173"]
DEV_ISSUER = "soundhive-dev-issuer"
DEV_AUDIENCE = "soundhive"


def _split(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    """Every knob of SPEC §3, plus a few operational limits with safe defaults."""

    model_config = SettingsConfigDict(
        env_prefix="SOUNDHIVE_", env_file=".env", extra="ignore", validate_default=True
    )

    env: Environment = "dev"
    database_url: str | None = None
    redis_url: str | None = None
    broker_url: str | None = None
    storage: Literal["local", "s3"] = "local"
    data_dir: Path = Path("./.soundhive")
    s3_endpoint_url: str | None = None
    s3_bucket: str | None = None
    s3_region: str | None = None
    s3_write_once: bool = True
    """Bind ``If-None-Match: *`` into presigned PUTs so an upload URL cannot overwrite a
    finished object; turn off only for an S3-compatible store that rejects the header."""
    max_upload_bytes: int = Field(default=100 * 1024 * 1024, ge=1)
    presign_put_expires: int = Field(default=900, ge=1, le=604800)
    """Seconds an upload URL stays valid (checked when the upload starts)."""
    presign_get_expires: int = Field(default=900, ge=1, le=604800)
    """Seconds a download/stream URL stays valid."""
    auth_jwks_url: str | None = None
    auth_issuer: str | None = None
    auth_audience: str | None = None
    auth_algorithms: Annotated[list[str], NoDecode] = ["RS256"]
    cors_origins: Annotated[list[str] | None, NoDecode] = None
    skills_enabled: Annotated[list[str] | None, NoDecode] = None
    skills_disabled: Annotated[list[str], NoDecode] = []
    rate_limit: str = "60/minute"
    near_cache: bool = True
    """API processes keep hot cache entries (accounts, tracks) in memory too, kept coherent by
    Redis pub/sub (``core.nearcache``); ``false`` sends every look-up to Redis."""
    concurrency_limit: int = Field(default=512, ge=1)
    outbox_linger_ms: int = Field(default=20, ge=0, le=1000)
    """How long an API process's outbox relay waits after a commit wakes it, so the events of
    a burst of writes share one relay pass (one transaction, one pipelined enqueue)."""
    max_token_bytes: int = Field(default=8192, ge=256)
    max_json_bytes: int = Field(default=1024 * 1024, ge=1024)
    """Largest request body outside ``/storage/`` (413 ``PAYLOAD_TOO_LARGE`` above it): the
    API takes small JSON documents; audio goes to storage, which has its own signed limit."""
    embedded: bool = False
    """Set by ``soundhive dev`` when PostgreSQL/Redis are the embedded ones."""
    public_url: str | None = None
    """Base URL clients reach the API at (for signed URLs); defaults to the served address."""
    secret_key: str | None = None
    """Signs local URLs and cursors; dev/test derive one kept in the data dir."""
    log_level: str = "INFO"
    log_json: bool = True
    db_pool_size: int = Field(default=20, ge=1)
    """Connections each process keeps open; size it for the usual concurrency."""
    db_max_overflow: int = Field(default=10, ge=0)
    """Extra connections for bursts, closed again when returned (a new connection is costly)."""
    db_pool_pre_ping: bool = False
    """Ping each connection on checkout (a round trip per request); off: dead connections are
    discarded when a statement fails on them."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings, dotenv_settings]
        config_file = os.environ.get("SOUNDHIVE_CONFIG_FILE")
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        sources.append(file_secret_settings)
        return tuple(sources)

    @field_validator(
        "cors_origins", "skills_enabled", "skills_disabled", "auth_algorithms", mode="before"
    )
    @classmethod
    def _comma_lists(cls, value: object) -> object:
        return _split(value)

    @field_validator("rate_limit")
    @classmethod
    def _rate_limit_format(cls, value: str) -> str:
        parse_rate(value)
        return value

    @field_validator("auth_algorithms")
    @classmethod
    def _asymmetric_only(cls, value: list[str]) -> list[str]:
        allowed = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"}
        bad = [alg for alg in value if alg not in allowed]
        if bad or not value:
            raise ValueError(f"only asymmetric JWT algorithms are allowed, got {bad or value}")
        return value

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.cors_origins is None:
            self.cors_origins = [] if self.env == "prod" else list(DEV_CORS_ORIGINS)
        if self.env != "prod":
            return self
        problems = []
        if self.embedded or not self.database_url or not self.redis_url:
            problems.append(
                "embedded services are for development: set SOUNDHIVE_DATABASE_URL and "
                "SOUNDHIVE_REDIS_URL to real PostgreSQL and Redis"
            )
        if "*" in (self.cors_origins or []):
            problems.append("a wildcard CORS origin is not allowed: list the frontend origins")
        if not self.auth_jwks_url:
            problems.append("SOUNDHIVE_AUTH_JWKS_URL must point at the Auth Server's JWKS")
        if not self.auth_issuer or not self.auth_audience:
            problems.append("SOUNDHIVE_AUTH_ISSUER and SOUNDHIVE_AUTH_AUDIENCE are required")
        if self.auth_issuer == DEV_ISSUER:
            problems.append("the dev issuer cannot be trusted in production")
        if self.storage == "s3" and not self.s3_bucket:
            problems.append("SOUNDHIVE_S3_BUCKET is required with SOUNDHIVE_STORAGE=s3")
        if not self.secret_key or len(self.secret_key) < 32:
            problems.append("SOUNDHIVE_SECRET_KEY must be set (32+ characters)")
        if problems:
            raise ValueError("refusing to start in prod: " + "; ".join(problems))
        return self

    @property
    def effective_issuer(self) -> str:
        return self.auth_issuer or DEV_ISSUER

    @property
    def effective_audience(self) -> str:
        return self.auth_audience or DEV_AUDIENCE

    @property
    def effective_broker_url(self) -> str | None:
        return self.broker_url or self.redis_url

    def secret(self) -> str:
        """The signing secret; outside prod a random one is created once in the data dir.

        Created with an atomic link so processes starting together agree on one secret.
        """
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret.key"
        if not path.exists():
            import contextlib
            import os
            import secrets
            import tempfile

            path.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".secret-")
            try:
                os.write(fd, secrets.token_urlsafe(48).encode())
                os.close(fd)
                os.chmod(temp, 0o600)
                with contextlib.suppress(FileExistsError):  # another process won: use theirs
                    os.link(temp, path)
            finally:
                os.unlink(temp)
        return path.read_text().strip()


_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def parse_rate(value: str) -> tuple[int, int]:
    """Parse ``"60/minute"`` or ``"300/5minute"`` into (requests, window seconds)."""
    try:
        count_text, per = value.strip().split("/", 1)
        digits = "".join(ch for ch in per if ch.isdigit())
        unit = per[len(digits) :].strip().rstrip("s")
        count, window = int(count_text), int(digits or 1) * _UNITS[unit]
    except (ValueError, KeyError) as exc:
        raise ValueError(
            f"rate limit {value!r} must look like '60/minute' or '300/5minute'"
        ) from exc
    if count < 1:
        raise ValueError("rate limit must allow at least one request")
    return count, window
