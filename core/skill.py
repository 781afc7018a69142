"""What a skill declares: its manifest and the typed contributions its hooks return.

These are plain data, so the CLI and Alembic can read a skill without building the app.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from core.kernel import Kernel

hookimpl = pluggy.HookimplMarker("soundhive")
"""Decorator for a skill's hook implementations."""


@dataclass(frozen=True)
class Skill:
    """A skill's manifest, exported as ``SKILL`` by the package its entry point names.

    Alembic revisions live in the package's ``migrations/`` folder; the first one carries
    ``branch_labels=(name,)`` and ``depends_on=("core_0001",)``.
    """

    name: str
    version: str
    requires: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class CacheKey:
    """A Redis key namespace owned by a skill; keys are ``sh:<namespace>:<suffix>``."""

    namespace: str
    ttl_seconds: int
    description: str = ""
    near_ttl_seconds: float = 0
    """Above 0: API processes also keep the entries they read in memory this long, dropped
    in every process when the key changes (``core.nearcache``). For hot, small entries."""
    near_max_entries: int = 10_000
    """The most entries each process keeps in memory (least recently filled go first)."""


ActorFn = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class Actor:
    """A background job. The kernel declares it on its broker as ``<skill>.<verb>``.

    ``fn`` is ``async def fn(kernel, *args, **kwargs)``; it must be idempotent (at-least-once).
    """

    verb: str
    fn: ActorFn
    max_retries: int = 5
    time_limit_ms: int = 10 * 60 * 1000
    queue: str = "default"


@dataclass(frozen=True)
class PeriodicJob:
    """Runs the skill's actor ``verb`` every ``every_seconds`` (sent by ``soundhive scheduler``)."""

    verb: str
    every_seconds: float


@dataclass(frozen=True)
class EventHandler:
    """Subscribes the skill's actor ``verb`` to domain events named ``event``.

    The actor receives the event as keyword arguments: ``id``, ``type``, ``payload``,
    ``occurred_at``.
    """

    event: str
    verb: str


HealthCheckFn = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class HealthCheck:
    """A readiness probe reported by ``/readyz``; it raises when the dependency is unusable."""

    name: str
    check: HealthCheckFn
    critical: bool = True


@dataclass
class SkillInfo:
    """A skill as the kernel sees it after discovery."""

    name: str
    entry_point: str
    enabled: bool
    manifest: Skill | None = None
    module: Any = None
    dist_version: str | None = None
    routes: list[str] = field(default_factory=list)
    actors: list[str] = field(default_factory=list)
    cache_keys: list[CacheKey] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)
    periodic_jobs: list[PeriodicJob] = field(default_factory=list)
    event_handlers: list[EventHandler] = field(default_factory=list)

    @property
    def requires(self) -> tuple[str, ...]:
        return self.manifest.requires if self.manifest else ()

    @property
    def version(self) -> str:
        return self.manifest.version if self.manifest else (self.dist_version or "?")


__all__ = [
    "Actor",
    "CacheKey",
    "EventHandler",
    "HealthCheck",
    "Kernel",
    "PeriodicJob",
    "Skill",
    "SkillInfo",
    "hookimpl",
]
