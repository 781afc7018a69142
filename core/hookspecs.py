"""The hooks a skill may implement. Each docstring is that hook's documentation.

Hooks are called with keyword arguments, one skill at a time, so every contribution is
tagged with the skill that made it. An implementation may accept any subset of a hook's
arguments, which lets a spec grow new arguments without breaking skills.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import typer
    from fastapi import APIRouter, Request
    from pydantic_settings import BaseSettings

    from core.auth import Principal
    from core.kernel import Kernel
    from core.settings import Settings
    from core.skill import Actor, CacheKey, EventHandler, HealthCheck, PeriodicJob

hookspec = pluggy.HookspecMarker("soundhive")


@hookspec
def register_routers(kernel: Kernel) -> list[APIRouter]:
    """Return the skill's API routers; the kernel mounts them under ``/api/v1``.

    Route paths must be unique across skills: a path+method claimed twice stops start-up.
    """


@hookspec
def register_public_routers(kernel: Kernel) -> list[APIRouter]:
    """Return routers mounted at the site root (e.g. ``/.well-known/jwks.json``)."""


@hookspec
def register_models() -> list[type[Any]]:
    """Return the skill's SQLModel table classes.

    Their tables feed Alembic autogenerate and the table-collision check.
    """


@hookspec
def register_cache_keys() -> list[CacheKey]:
    """Declare the Redis key namespaces (with TTLs) the skill uses through ``kernel.cache``;
    ``near_ttl_seconds`` also keeps hot entries in each API process (docs/caching.md)."""


@hookspec
def register_actors(kernel: Kernel) -> list[Actor]:
    """Return background actors; each is declared on the broker as ``<skill>.<verb>``."""


@hookspec
def register_periodic_jobs(kernel: Kernel) -> list[PeriodicJob]:
    """Return jobs that ``soundhive scheduler`` sends to one of the skill's actors on a timer."""


@hookspec
def register_event_handlers(kernel: Kernel) -> list[EventHandler]:
    """Subscribe the skill's actors to domain events relayed from the outbox."""


@hookspec
def register_health_checks(kernel: Kernel) -> list[HealthCheck]:
    """Return readiness probes that ``/readyz`` runs and reports by name."""


@hookspec
def register_cli(app: typer.Typer) -> None:
    """Add commands to the ``soundhive`` command line (``app.command()(fn)``)."""


@hookspec
def register_settings() -> type[BaseSettings] | None:
    """Return the skill's own pydantic-settings class; read it with ``kernel.skill_settings``."""


@hookspec
def check_settings(settings: Settings) -> list[str]:
    """Return reasons the skill refuses to start under these settings (empty if none)."""


@hookspec
def lifespan(kernel: Kernel) -> AbstractAsyncContextManager[None] | None:
    """Return an async context manager entered at start-up (dependency order), exited at stop."""


@hookspec(firstresult=True)
def authenticate(request: Request, kernel: Kernel) -> Principal | None:
    """Turn a request's credentials into a principal; the first non-None answer wins.

    May return an awaitable. Raise ``core.errors.Unauthorized`` for bad credentials and
    return ``None`` when the request carries none.
    """


@hookspec
def dev_banner(settings: Settings) -> list[str]:
    """Lines ``soundhive dev`` prints once everything runs (e.g. a ready-to-use dev token)."""
