"""A test skill that implements every hook, so each hook is exercised by a test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any

import typer
from fastapi import APIRouter, Request
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.auth import MaybePrincipal, Principal
from core.skill import Actor, CacheKey, EventHandler, HealthCheck, PeriodicJob, Skill, hookimpl


class EverythingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SOUNDHIVE_EVERYTHING_")
    greeting: str = "hi"


class Everything:
    """Records what the kernel asked of it."""

    SKILL = Skill(name="everything", version="9.9", description="implements every hook")

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.lifespan_log: list[str] = []
        self.healthy = True

    @hookimpl
    def register_routers(self, kernel: Any) -> list[APIRouter]:
        router = APIRouter(prefix="/everything")

        @router.get("/whoami")
        async def whoami(principal: MaybePrincipal, request: Request) -> dict[str, Any]:
            settings = request.app.state.kernel.skill_settings("everything")
            return {"sub": principal.sub if principal else None, "greeting": settings.greeting}

        return [router]

    @hookimpl
    def register_public_routers(self, kernel: Any) -> list[APIRouter]:
        router = APIRouter()

        @router.get("/.well-known/everything")
        async def well_known() -> dict[str, bool]:
            return {"everything": True}

        return [router]

    @hookimpl
    def register_models(self) -> list[Any]:
        return [SimpleNamespace(__tablename__="everything_things")]

    @hookimpl
    def register_cache_keys(self) -> list[CacheKey]:
        return [CacheKey("everything", 30, "test values")]

    @hookimpl
    def register_actors(self, kernel: Any) -> list[Actor]:
        async def record(kernel: Any, **kwargs: Any) -> None:
            self.received.append(kwargs)

        return [Actor("record", record, max_retries=0)]

    @hookimpl
    def register_periodic_jobs(self, kernel: Any) -> list[PeriodicJob]:
        return [PeriodicJob("record", 0.2)]

    @hookimpl
    def register_event_handlers(self, kernel: Any) -> list[EventHandler]:
        return [EventHandler("everything.happened", "record")]

    @hookimpl
    def register_health_checks(self, kernel: Any) -> list[HealthCheck]:
        async def probe() -> None:
            if not self.healthy:
                raise RuntimeError("probe failed")

        return [HealthCheck("probe", probe, critical=True)]

    @hookimpl
    def register_cli(self, app: typer.Typer) -> None:
        @app.command("everything-hello")
        def hello() -> None:
            typer.echo("hello from everything")

    @hookimpl
    def register_settings(self) -> type[BaseSettings]:
        return EverythingSettings

    @hookimpl
    def check_settings(self, settings: Any) -> list[str]:
        return ["everything refuses staging"] if settings.env == "staging" else []

    @hookimpl
    def lifespan(self, kernel: Any) -> Any:
        @asynccontextmanager
        async def manage() -> AsyncIterator[None]:
            self.lifespan_log.append("start")
            yield
            self.lifespan_log.append("stop")

        return manage()

    @hookimpl
    def authenticate(self, request: Request, kernel: Any) -> Principal | None:
        sub = request.headers.get("x-everything-user")
        return Principal(sub=sub, roles=frozenset({"tester"})) if sub else None

    @hookimpl
    def dev_banner(self, settings: Any) -> list[str]:
        return [f"everything runs in {settings.env}"]
