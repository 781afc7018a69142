"""``hello``: an example third-party skill. It touches nothing in Soundhive's core.

POST a greeting → a row in its own table, a ``hello.greeted`` domain event → its own actor
counts greetings per name; GET reads through its own cache namespace.
"""

from __future__ import annotations

from typing import Any

from core.skill import Actor, CacheKey, EventHandler, Skill, hookimpl

SKILL = Skill(
    name="hello",
    version="0.1.0",
    requires=("auth-jwt-verify",),
    description="Example third-party skill.",
)


@hookimpl
def register_models() -> list[type[Any]]:
    from soundhive_hello.models import Greeting, GreetingTally

    return [Greeting, GreetingTally]


@hookimpl
def register_routers(kernel: Any) -> list[Any]:
    from soundhive_hello.router import router

    return [router]


@hookimpl
def register_cache_keys() -> list[CacheKey]:
    return [CacheKey("hello", 60, "greeting tallies per name")]


@hookimpl
def register_actors(kernel: Any) -> list[Actor]:
    from soundhive_hello.tasks import tally_greeting

    return [Actor("tally", tally_greeting, max_retries=3)]


@hookimpl
def register_event_handlers(kernel: Any) -> list[EventHandler]:
    return [EventHandler("hello.greeted", "tally")]
