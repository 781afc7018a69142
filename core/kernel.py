"""The kernel: validated skills, their contributions, and lazily built platform services.

One ``Kernel`` per process (API, worker, scheduler, CLI). Building it imports the enabled
skills and checks their contributions; connections open on first use.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Annotated, Any

import dramatiq
import pluggy
from fastapi import Depends, Request
from pydantic_settings import BaseSettings

from core.cache import Cache, Circuit, make_redis
from core.db import Database
from core.plugins import SkillError, call_each, load_skills
from core.settings import Settings
from core.skill import Actor, CacheKey, EventHandler, HealthCheck, PeriodicJob, SkillInfo

if TYPE_CHECKING:
    from core.storage import Storage

CORE_CACHE_KEYS = (
    CacheKey("ratelimit", 3600, "request counters per principal or client IP (owned by core)"),
    CacheKey("scheduler", 3600, "periodic job ticks, so two schedulers never double-send"),
)


class Kernel:
    """Everything a skill may use: settings, database, cache, broker, and the skill registry."""

    def __init__(self, settings: Settings, *, extra_plugins: Iterable[Any] = ()) -> None:
        self.settings = settings
        self.pm: pluggy.PluginManager
        self.pm, self.skills = load_skills(settings, extra=extra_plugins)
        self.cache_keys: dict[str, tuple[str, CacheKey]] = {}
        self.tables: dict[str, str] = {}
        self.actors: dict[str, tuple[str, Actor]] = {}
        self.subscriptions: dict[str, list[str]] = {}
        self.periodic_jobs: list[tuple[str, PeriodicJob]] = []
        self._skill_settings: dict[str, BaseSettings] = {}
        self._db: Database | None = None
        self._redis: Any = None
        self._cache: Cache | None = None
        self.relay: Any = None
        """The app's :class:`core.events.BackgroundRelay` while it serves (else ``None``)."""
        self.rate_counter: Any = None
        """The API's ``core.ratelimit.BatchedCounter`` while it runs (None: exact counting)."""
        self._broker: dramatiq.Broker | None = None
        self._storage: Storage | None = None
        self.circuit = Circuit()
        self._collect()

    # -- registry -----------------------------------------------------------------------
    @property
    def enabled(self) -> list[SkillInfo]:
        """Enabled skills in dependency order."""
        return [info for info in self.skills.values() if info.enabled]

    def call_each(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call a hook skill by skill, in dependency order, tagging results with the skill."""
        return call_each(self.pm, hook_name, order=[i.name for i in self.enabled], **kwargs)

    def _collect(self) -> None:
        for core_key in CORE_CACHE_KEYS:
            self.cache_keys[core_key.namespace] = ("core", core_key)
        self.tables["core_outbox"] = "core"
        for skill, models in self.call_each("register_models"):
            for model in models:
                table = getattr(model, "__tablename__", None) or model.__table__.name
                table_owner = self.tables.get(table)
                if table_owner is not None and table_owner != skill:
                    raise SkillError(
                        f"skill {skill!r} declares table {table!r}, owned by {table_owner!r}"
                    )
                self.tables[table] = skill
                self.skills[skill].tables.append(table)
        for skill, keys in self.call_each("register_cache_keys"):
            for key in keys:
                owner = self.cache_keys.get(key.namespace)
                if owner is not None:
                    raise SkillError(
                        f"skill {skill!r} declares cache namespace {key.namespace!r}, "
                        f"already owned by {owner[0]!r}"
                    )
                self.cache_keys[key.namespace] = (skill, key)
                self.skills[skill].cache_keys.append(key)
        for skill, actors in self.call_each("register_actors", kernel=self):
            for actor in actors:
                name = f"{skill}.{actor.verb}"
                if name in self.actors:
                    raise SkillError(f"skill {skill!r} declares actor {name!r} twice")
                self.actors[name] = (skill, actor)
                self.skills[skill].actors.append(name)
        for skill, handlers in self.call_each("register_event_handlers", kernel=self):
            for handler in handlers:
                name = self._own_actor(skill, handler.verb, f"event handler for {handler.event!r}")
                self.subscriptions.setdefault(handler.event, []).append(name)
                self.skills[skill].event_handlers.append(handler)
        for skill, jobs in self.call_each("register_periodic_jobs", kernel=self):
            for job in jobs:
                self._own_actor(skill, job.verb, "periodic job")
                self.periodic_jobs.append((skill, job))
                self.skills[skill].periodic_jobs.append(job)

    def _own_actor(self, skill: str, verb: str, what: str) -> str:
        name = f"{skill}.{verb}"
        if name not in self.actors:
            raise SkillError(
                f"skill {skill!r}: {what} names actor {name!r}, which it does not declare"
            )
        return name

    def skill_settings(self, skill: str) -> Any:
        """The skill's own settings (from ``register_settings``), read once from the environment."""
        if skill not in self._skill_settings:
            results = call_each(self.pm, "register_settings", only=skill)
            if not results:
                raise SkillError(f"skill {skill!r} declares no settings")
            self._skill_settings[skill] = results[0][1]()
        return self._skill_settings[skill]

    def health_checks(self) -> list[tuple[str, HealthCheck]]:
        return [
            (skill, check)
            for skill, checks in self.call_each("register_health_checks", kernel=self)
            for check in checks
        ]

    def event_handlers(self) -> list[tuple[str, EventHandler]]:
        return [(info.name, h) for info in self.enabled for h in info.event_handlers]

    # -- services -----------------------------------------------------------------------
    @property
    def db(self) -> Database:
        if self._db is None:
            if not self.settings.database_url:
                raise SkillError(
                    "no database configured: set SOUNDHIVE_DATABASE_URL or run 'soundhive dev'"
                )
            self._db = Database(
                self.settings.database_url,
                pool_size=self.settings.db_pool_size,
                max_overflow=self.settings.db_max_overflow,
                pre_ping=self.settings.db_pool_pre_ping,
            )
        return self._db

    @property
    def redis(self) -> Any:
        """The raw async Redis client, or ``None`` when none is configured."""
        if self._redis is None and self.settings.redis_url:
            self._redis = make_redis(self.settings.redis_url)
        return self._redis

    @property
    def cache(self) -> Cache:
        if self._cache is None:
            declared = {ns: key for ns, (_, key) in self.cache_keys.items()}
            self._cache = Cache(self.redis, declared, self.circuit, near=self.settings.near_cache)
        return self._cache

    @property
    def storage(self) -> Storage:
        """Object storage (``local`` or ``s3`` per ``SOUNDHIVE_STORAGE``); see core/storage."""
        if self._storage is None:
            from core.storage import build_storage

            self._storage = build_storage(self.settings)
        return self._storage

    @property
    def broker(self) -> dramatiq.Broker:
        """The Dramatiq broker with every enabled skill's actors declared on it."""
        if self._broker is None:
            from core.broker import build_broker

            self.use_broker(build_broker(self.settings.effective_broker_url))
        assert self._broker is not None
        return self._broker

    def use_broker(self, broker: dramatiq.Broker) -> None:
        """Declare the actors on ``broker`` and use it (tests pass a StubBroker)."""
        for name, (_, actor) in self.actors.items():
            dramatiq.actor(  # type: ignore[call-overload]
                _bind(actor.fn, self),
                broker=broker,
                actor_name=name,
                queue_name=actor.queue,
                max_retries=actor.max_retries,
                time_limit=actor.time_limit_ms,
            )
        self._broker = broker

    def send(self, actor_name: str, *args: Any, **kwargs: Any) -> None:
        """Enqueue a job by name, so skills never import each other's actors."""
        self.broker.get_actor(actor_name).send(*args, **kwargs)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Kernel]:
        """Enter each skill's lifespan in dependency order; close services on exit."""
        async with AsyncExitStack() as stack:
            for _, manager in self.call_each("lifespan", kernel=self):
                await stack.enter_async_context(manager)
            try:
                yield self
            finally:
                await stack.aclose()
                await self.aclose()

    async def aclose(self) -> None:
        if self._db is not None:
            await self._db.dispose()
            self._db = None
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None
            self._cache = None
        if self._storage is not None:
            await self._storage.aclose()
            self._storage = None


def _bind(fn: Any, kernel: Kernel) -> Any:
    """An ``async def`` actor body with the kernel bound as its first argument."""

    @functools.wraps(fn)
    async def run(*args: Any, **kwargs: Any) -> None:
        from core.events import relaying

        # results are for logs and tests calling the function directly; Dramatiq stores none
        await relaying(kernel, fn(kernel, *args, **kwargs))

    return run


def kernel_of(request: Request) -> Kernel:
    """The kernel serving this request, from code that already holds the request."""
    return request.app.state.kernel  # type: ignore[no-any-return]


async def get_kernel(request: Request) -> Kernel:
    """The kernel serving this request: a FastAPI dependency for routers (``async`` so FastAPI
    does not hand it to a thread pool, as it does with plain functions)."""
    return kernel_of(request)


KernelDep = Annotated[Kernel, Depends(get_kernel)]
