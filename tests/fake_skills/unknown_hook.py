"""A skill implementing a misspelt hook."""

from core.skill import Skill, hookimpl

SKILL = Skill(name="unknown-hook", version="1")


@hookimpl
def register_routerz() -> list[object]:
    return []
