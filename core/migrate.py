"""Alembic driven per skill: one branch per skill, upgraded in dependency order."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool

from core.kernel import Kernel
from core.plugins import discover

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
CORE_BRANCH = "core"


def sync_url(url: str) -> str:
    from core.db import async_url

    return async_url(url)


def skill_migration_dir(package: str) -> Path | None:
    """``<package>/migrations`` of an installed skill, found without importing the skill."""
    module = package.split(":", 1)[0]
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "migrations"
    return folder if folder.is_dir() else None


def version_locations(kernel: Kernel) -> dict[str, Path]:
    """Branch label → folder, for every *installed* skill (enabled or not) plus the kernel."""
    locations = {CORE_BRANCH: MIGRATIONS_DIR / "versions"}
    for ep in discover():
        folder = skill_migration_dir(ep.value)
        if folder is not None:
            locations[ep.name] = folder
    for info in kernel.enabled:
        module = getattr(info.module, "__name__", None)
        if info.name not in locations and module:
            folder = skill_migration_dir(module)
            if folder is not None:
                locations[info.name] = folder
    return locations


def alembic_config(kernel: Kernel, url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    locations = version_locations(kernel)
    cfg.set_main_option("version_locations", " ".join(str(p) for p in locations.values()))
    cfg.set_main_option("path_separator", "space")
    cfg.attributes["url"] = sync_url(url or kernel.settings.database_url or "")
    cfg.attributes["locations"] = locations
    return cfg


def branches_to_upgrade(kernel: Kernel, cfg: Config) -> list[str]:
    """The kernel's branch, then each enabled skill that has migrations, in dependency order."""
    locations: dict[str, Path] = cfg.attributes["locations"]
    script = ScriptDirectory.from_config(cfg)
    labels = {label for rev in script.walk_revisions() for label in rev.branch_labels}
    branches = [CORE_BRANCH]
    branches += [
        info.name for info in kernel.enabled if info.name in locations and info.name in labels
    ]
    return branches


def upgrade(kernel: Kernel, url: str | None = None) -> list[str]:
    """Upgrade the kernel branch and every enabled skill's branch to its head."""
    _load_models(kernel)
    cfg = alembic_config(kernel, url)
    branches = branches_to_upgrade(kernel, cfg)
    for branch in branches:
        command.upgrade(cfg, f"{branch}@head")
    return branches


def downgrade_branch(kernel: Kernel, branch: str, url: str | None = None) -> None:
    cfg = alembic_config(kernel, url)
    command.downgrade(cfg, f"{branch}@base")


def current_heads(kernel: Kernel, url: str | None = None) -> set[str]:
    engine = create_engine(
        sync_url(url or kernel.settings.database_url or ""), poolclass=pool.NullPool
    )
    try:
        with engine.connect() as conn:
            return set(MigrationContext.configure(conn).get_current_heads())
    finally:
        engine.dispose()


def _load_models(kernel: Kernel) -> None:
    """Importing models registers their tables on SQLModel.metadata for autogenerate."""
    kernel.call_each("register_models")


def revision(kernel: Kernel, skill: str, message: str, *, autogenerate: bool = True) -> None:
    """Write a new revision for ``skill`` (a new branch if it has none yet)."""
    _load_models(kernel)
    info = kernel.skills[skill]
    if info.module is not None and skill_migration_dir(info.module.__name__) is None:
        (Path(info.module.__file__).parent / "migrations").mkdir(exist_ok=True)
    cfg = alembic_config(kernel)
    cfg.attributes["tables"] = set(kernel.skills[skill].tables)
    locations: dict[str, Path] = cfg.attributes["locations"]
    script = ScriptDirectory.from_config(cfg)
    in_branch = [rev for rev in script.walk_revisions() if skill in _branch_of(script, rev)]
    rev_id = f"{skill.replace('-', '_')}_{len(in_branch) + 1:04d}"
    if in_branch:
        command.revision(
            cfg, message=message, autogenerate=autogenerate, head=f"{skill}@head", rev_id=rev_id
        )
        return
    folder = locations.get(skill) or Path(info.module.__file__).parent / "migrations"
    # the new branch depends on the kernel and on the current heads of the skills it requires
    depends = ["core_0001"]
    labels = {label for rev in script.walk_revisions() for label in rev.branch_labels}
    for required in info.requires:
        if required in labels:
            head = script.get_revisions(f"{required}@head")[0]
            if head is not None:
                depends.append(head.revision)
    command.revision(
        cfg,
        message=message,
        autogenerate=autogenerate,
        head="base",
        branch_label=skill,
        version_path=str(folder),
        depends_on=depends,  # type: ignore[arg-type]  # alembic accepts a list
        rev_id=rev_id,
    )


def _branch_of(script: ScriptDirectory, rev: Any) -> set[str]:
    """Branch labels that apply to ``rev`` (its own or its base revision's)."""
    labels: set[str] = set()
    for ancestor in script.iterate_revisions(rev.revision, "base"):
        labels.update(ancestor.branch_labels)
    return labels
