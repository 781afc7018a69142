"""Skill discovery and start-up validation: every failure names the skill."""

from __future__ import annotations

import inspect
from importlib.metadata import EntryPoint
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import APIRouter

from core import hookspecs
from core.app import create_app
from core.kernel import Kernel
from core.plugins import SkillError, dependency_order, discover, load_skills
from core.settings import Settings
from core.skill import Actor, CacheKey, EventHandler, PeriodicJob, Skill, SkillInfo, hookimpl

BUILT_INS = {"auth-jwt-verify", "dev-auth-issuer", "user-profile"}


def settings(**kw: Any) -> Settings:
    return Settings(_env_file=None, **kw)  # type: ignore[call-arg]


def ep(name: str, module: str) -> EntryPoint:
    return EntryPoint(name=name, value=f"tests.fake_skills.{module}", group="soundhive.skills")


def plugin(name: str, requires: tuple[str, ...] = (), **hooks: Any) -> Any:
    """A skill object whose hooks are the given functions."""
    namespace: dict[str, Any] = {"SKILL": Skill(name=name, version="1.0", requires=requires)}
    for hook_name, fn in hooks.items():
        namespace[hook_name] = staticmethod(hookimpl(fn))
    return type(name.replace("-", "_"), (), namespace)()


def test_built_in_skills_are_discovered_through_entry_points() -> None:
    names = {e.name for e in discover()}
    assert names >= BUILT_INS


def test_disabled_skill_is_never_imported() -> None:
    pm, infos = load_skills(
        settings(skills_disabled=["broken"]), entry_points_=[ep("broken", "broken_import")]
    )
    assert infos["broken"].enabled is False and infos["broken"].module is None
    assert pm.is_blocked("broken")


def test_allow_list_disables_the_rest() -> None:
    _, infos = load_skills(
        settings(skills_enabled=["good"]),
        entry_points_=[ep("broken", "broken_import")],
        extra=[plugin("good")],
    )
    assert infos["good"].enabled and not infos["broken"].enabled


def test_broken_entry_point_stops_start_up_naming_the_skill() -> None:
    with pytest.raises(SkillError, match=r"skill 'broken': entry point .* failed to load"):
        load_skills(settings(), entry_points_=[ep("broken", "broken_import")])


def test_missing_manifest_is_an_error() -> None:
    with pytest.raises(SkillError, match=r"'nomani'.*no SKILL"):
        load_skills(settings(), entry_points_=[ep("nomani", "no_manifest")])


def test_entry_point_name_must_match_manifest() -> None:
    with pytest.raises(SkillError, match=r"'other-name'.*differ"):
        load_skills(settings(), entry_points_=[ep("other-name", "unknown_hook")])


def test_unknown_hook_is_a_start_up_error() -> None:
    with pytest.raises(SkillError, match=r"'unknown-hook' implements an unknown hook"):
        load_skills(settings(), entry_points_=[ep("unknown-hook", "unknown_hook")])


def test_hook_with_unknown_argument_is_refused() -> None:
    with pytest.raises(SkillError, match=r"'wrong-args': invalid hook implementation"):
        load_skills(settings(), entry_points_=[ep("wrong-args", "wrong_args")])


def test_duplicate_skill_names_are_refused() -> None:
    with pytest.raises(SkillError, match=r"duplicate skill name 'twin'"):
        load_skills(settings(), entry_points_=[], extra=[plugin("twin"), plugin("twin")])


def test_missing_dependency_names_both_skills() -> None:
    with pytest.raises(SkillError, match=r"skill 'feed' requires 'follow', which is not installed"):
        load_skills(settings(), entry_points_=[], extra=[plugin("feed", ("follow",))])


def test_disabled_dependency_names_both_skills() -> None:
    with pytest.raises(SkillError, match=r"'feed' requires 'follow', which is disabled"):
        load_skills(
            settings(skills_disabled=["follow"]),
            entry_points_=[],
            extra=[plugin("feed", ("follow",)), plugin("follow")],
        )


def test_dependency_cycle_is_refused() -> None:
    with pytest.raises(SkillError, match=r"cycle: .*a.*b"):
        load_skills(settings(), entry_points_=[], extra=[plugin("a", ("b",)), plugin("b", ("a",))])


def test_dependency_order_puts_requirements_first() -> None:
    infos = {
        n: SkillInfo(name=n, entry_point=n, enabled=True, manifest=Skill(n, "1", r))
        for n, r in [("c", ("b",)), ("b", ("a",)), ("a", ())]
    }
    assert [i.name for i in dependency_order(infos)] == ["a", "b", "c"]


def test_enabled_list_naming_an_unknown_skill_is_an_error() -> None:
    with pytest.raises(SkillError, match=r"'ghost' is listed in SOUNDHIVE_SKILLS_ENABLED"):
        load_skills(settings(skills_enabled=["ghost"]), entry_points_=[])


def test_check_settings_refusal_names_the_skill() -> None:
    refuse = plugin("picky", check_settings=lambda settings: ["needs staging"])
    with pytest.raises(SkillError, match=r"skill 'picky' refuses to start: needs staging"):
        load_skills(settings(), entry_points_=[], extra=[refuse])


def test_hook_exception_is_reported_with_the_skill() -> None:
    def boom() -> list[Any]:
        raise ValueError("kaput")

    with pytest.raises(SkillError, match=r"skill 'faulty': hook register_models failed: kaput"):
        Kernel(
            settings(skills_enabled=["faulty"]),
            extra_plugins=[plugin("faulty", register_models=boom)],
        )


def router_with(path: str) -> APIRouter:
    router = APIRouter()

    @router.get(path)
    async def endpoint() -> dict[str, str]:
        return {}

    return router


def test_route_collision_names_both_skills() -> None:
    one = plugin("one", register_routers=lambda kernel: [router_with("/same")])
    two = plugin("two", register_routers=lambda kernel: [router_with("/same")])
    with pytest.raises(SkillError, match=r"skill 'two' claims route GET /api/v1/same.*'one'"):
        create_app(settings(skills_enabled=["one", "two"]), extra_plugins=[one, two])


def test_cache_namespace_collision() -> None:
    keys = [CacheKey("shared", 10)]
    one = plugin("one", register_cache_keys=lambda: keys)
    two = plugin("two", register_cache_keys=lambda: keys)
    with pytest.raises(SkillError, match=r"'two' declares cache namespace 'shared'.*'one'"):
        Kernel(settings(skills_enabled=["one", "two"]), extra_plugins=[one, two])


def test_core_cache_namespace_cannot_be_claimed() -> None:
    thief = plugin("thief", register_cache_keys=lambda: [CacheKey("ratelimit", 1)])
    with pytest.raises(SkillError, match=r"already owned by 'core'"):
        Kernel(settings(skills_enabled=["thief"]), extra_plugins=[thief])


def test_table_collision() -> None:
    fake = SimpleNamespace(__tablename__="core_outbox")
    thief = plugin("thief", register_models=lambda: [fake])
    with pytest.raises(SkillError, match=r"'thief' declares table 'core_outbox', owned by 'core'"):
        Kernel(settings(skills_enabled=["thief"]), extra_plugins=[thief])


async def noop(kernel: Any, **kwargs: Any) -> None:
    return None


def test_actor_names_are_prefixed_and_unique() -> None:
    twice = plugin("twice", register_actors=lambda kernel: [Actor("go", noop), Actor("go", noop)])
    with pytest.raises(SkillError, match=r"'twice' declares actor 'twice.go' twice"):
        Kernel(settings(skills_enabled=["twice"]), extra_plugins=[twice])


def test_subscription_must_name_an_own_actor() -> None:
    lost = plugin("lost", register_event_handlers=lambda kernel: [EventHandler("x.y", "nope")])
    with pytest.raises(SkillError, match=r"'lost': event handler .*'lost.nope'"):
        Kernel(settings(skills_enabled=["lost"]), extra_plugins=[lost])


def test_periodic_job_must_name_an_own_actor() -> None:
    lost = plugin("lost", register_periodic_jobs=lambda kernel: [PeriodicJob("tick", 1)])
    with pytest.raises(SkillError, match=r"'lost': periodic job names actor 'lost.tick'"):
        Kernel(settings(skills_enabled=["lost"]), extra_plugins=[lost])


def test_every_hookspec_is_documented_and_keyword_friendly() -> None:
    specs = [f for name, f in vars(hookspecs).items() if hasattr(f, "soundhive_spec")]
    assert len(specs) >= 14
    for spec in specs:
        assert inspect.getdoc(spec), f"hook {spec.__name__} has no docstring"
