"""Skill discovery and validation: entry points → blocked/loaded → manifests → order.

Every failure raises :class:`SkillError` naming the skill, so the app never half-starts.
"""

from __future__ import annotations

import graphlib
import inspect
from collections.abc import Iterable
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType
from typing import Any

import pluggy

from core import hookspecs
from core.settings import Settings
from core.skill import Skill, SkillInfo

ENTRY_POINT_GROUP = "soundhive.skills"


class SkillError(RuntimeError):
    """A start-up error caused by a skill; the message names it."""


def discover() -> list[EntryPoint]:
    """Installed skill entry points, without importing them; duplicates are an error."""
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        previous = found.get(ep.name)
        if previous is not None and previous.value != ep.value:
            raise SkillError(
                f"duplicate skill name {ep.name!r}: declared by {previous.value!r} and {ep.value!r}"
            )
        found[ep.name] = ep
    return sorted(found.values(), key=lambda ep: ep.name)


def is_enabled(name: str, settings: Settings) -> bool:
    if settings.skills_enabled is not None and name not in settings.skills_enabled:
        return False
    return name not in settings.skills_disabled


def new_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("soundhive")
    pm.add_hookspecs(hookspecs)
    return pm


def load_skills(
    settings: Settings,
    *,
    extra: Iterable[ModuleType | Any] = (),
    entry_points_: Iterable[EntryPoint] | None = None,
) -> tuple[pluggy.PluginManager, dict[str, SkillInfo]]:
    """Build the plugin manager with every enabled skill, validated and in dependency order.

    ``extra`` are plugin objects (modules or instances with a ``SKILL`` manifest) registered
    as if found through entry points — used by tests and embedders.
    """
    pm = new_plugin_manager()
    infos: dict[str, SkillInfo] = {}
    eps = list(discover() if entry_points_ is None else entry_points_)
    for ep in eps:
        enabled = is_enabled(ep.name, settings)
        info = SkillInfo(name=ep.name, entry_point=ep.value, enabled=enabled)
        infos[ep.name] = info
        if not enabled:
            pm.set_blocked(ep.name)
            info.dist_version = getattr(getattr(ep, "dist", None), "version", None)
            continue
        try:
            module = ep.load()
        except Exception as exc:
            raise SkillError(
                f"skill {ep.name!r}: entry point {ep.value!r} failed to load: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        _register(pm, info, module)
    for plugin in extra:
        manifest = _manifest_of(plugin, "<extra plugin>")
        if manifest.name in infos:
            raise SkillError(f"duplicate skill name {manifest.name!r}: registered twice")
        info = SkillInfo(
            name=manifest.name,
            entry_point=getattr(plugin, "__name__", type(plugin).__name__),
            enabled=is_enabled(manifest.name, settings),
        )
        infos[manifest.name] = info
        if info.enabled:
            _register(pm, info, plugin)
        else:
            info.manifest = manifest
    for name in settings.skills_enabled or ():
        if name not in infos:
            raise SkillError(
                f"skill {name!r} is listed in SOUNDHIVE_SKILLS_ENABLED but not installed"
            )
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        name = pm.get_name(exc.plugin) or repr(exc.plugin)
        hook = str(exc).split("'")[1] if "'" in str(exc) else str(exc)
        raise SkillError(f"skill {name!r} implements an unknown hook {hook!r}") from exc
    ordered = dependency_order(infos)
    for info in ordered:
        problems = _check_settings(pm, info, settings)
        if problems:
            raise SkillError(f"skill {info.name!r} refuses to start: " + "; ".join(problems))
    return pm, {info.name: info for info in ordered} | {
        name: info for name, info in infos.items() if not info.enabled
    }


def _manifest_of(plugin: Any, where: str) -> Skill:
    manifest = getattr(plugin, "SKILL", None)
    if not isinstance(manifest, Skill):
        raise SkillError(f"skill {where!r}: {plugin!r} exports no SKILL = Skill(...) manifest")
    return manifest


def _register(pm: pluggy.PluginManager, info: SkillInfo, plugin: Any) -> None:
    manifest = _manifest_of(plugin, info.name)
    if manifest.name != info.name:
        raise SkillError(
            f"skill {info.name!r}: entry point name and manifest name {manifest.name!r} differ"
        )
    info.manifest = manifest
    info.module = plugin
    try:
        pm.register(plugin, name=info.name)
    except pluggy.PluginValidationError as exc:
        raise SkillError(f"skill {info.name!r}: invalid hook implementation: {exc}") from exc
    except ValueError as exc:
        raise SkillError(f"skill {info.name!r}: {exc}") from exc


def dependency_order(infos: dict[str, SkillInfo]) -> list[SkillInfo]:
    """Enabled skills, each after the skills it requires; missing/disabled/cyclic → error."""
    graph: dict[str, tuple[str, ...]] = {}
    for info in infos.values():
        if not info.enabled:
            continue
        for dep in info.requires:
            if dep not in infos:
                raise SkillError(f"skill {info.name!r} requires {dep!r}, which is not installed")
            if not infos[dep].enabled:
                raise SkillError(
                    f"skill {info.name!r} requires {dep!r}, which is disabled: "
                    f"enable {dep!r} or disable {info.name!r}"
                )
        graph[info.name] = info.requires
    try:
        order = list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        cycle = " -> ".join(exc.args[1])
        raise SkillError(f"skills depend on each other in a cycle: {cycle}") from exc
    return [infos[name] for name in order]


def _check_settings(pm: pluggy.PluginManager, info: SkillInfo, settings: Settings) -> list[str]:
    problems: list[str] = []
    for _, result in call_each(pm, "check_settings", only=info.name, settings=settings):
        problems.extend(result or [])
    return problems


def call_each(
    pm: pluggy.PluginManager,
    hook_name: str,
    *,
    only: str | None = None,
    order: list[str] | None = None,
    **kwargs: Any,
) -> list[tuple[str, Any]]:
    """Call one hook skill by skill, returning ``(skill, result)`` pairs (None results dropped).

    Skills are called in ``order`` (dependency order) when given. Each implementation
    receives only the arguments it declares, as pluggy does.
    """
    hook = getattr(pm.hook, hook_name)
    results: list[tuple[str, Any]] = []
    impls = list(hook.get_hookimpls())
    if order is not None:
        rank = {name: i for i, name in enumerate(order)}
        impls.sort(key=lambda impl: rank.get(impl.plugin_name, len(rank)))
    for impl in impls:
        name = impl.plugin_name
        if only is not None and name != only:
            continue
        args = {key: kwargs[key] for key in impl.argnames if key in kwargs}
        try:
            result = impl.function(**args)
        except SkillError:
            raise
        except Exception as exc:
            raise SkillError(f"skill {name!r}: hook {hook_name} failed: {exc}") from exc
        if inspect.isawaitable(result):
            raise SkillError(f"skill {name!r}: hook {hook_name} must not be async")
        if result is not None:
            results.append((name, result))
    return results
