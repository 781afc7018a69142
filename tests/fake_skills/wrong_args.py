"""A skill whose hook asks for an argument the spec does not offer."""

from core.skill import Skill, hookimpl

SKILL = Skill(name="wrong-args", version="1")


@hookimpl
def register_routers(kernel: object, app: object) -> list[object]:
    return []
