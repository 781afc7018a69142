"""Per-skill Alembic branches: one head each, up/down/up round trips, and no model drift."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, pool
from sqlmodel import SQLModel

from core.kernel import Kernel
from core.migrate import alembic_config, current_heads, downgrade_branch, sync_url, upgrade
from core.testing.services import fresh_database


@pytest.fixture
def scratch_url(soundhive_services: Any) -> Any:
    with fresh_database(soundhive_services.admin_url, prefix="soundhive_migr") as url:
        yield url


def kernel_for(make_settings: Any, url: str) -> Kernel:
    return Kernel(make_settings(database_url=url))


def test_every_branch_has_exactly_one_head(make_settings: Any, scratch_url: str) -> None:
    kernel = kernel_for(make_settings, scratch_url)
    cfg = alembic_config(kernel)
    script = ScriptDirectory.from_config(cfg)
    labels = {label for rev in script.walk_revisions() for label in rev.branch_labels}
    assert "core" in labels
    heads_by_branch: dict[str, list[str]] = {}
    for label in labels:
        # alembic raises MultipleHeads here if a branch forked
        heads = script.get_revisions(f"{label}@head")
        assert len(heads) == 1, f"branch {label!r} has several heads: {heads}"
        heads_by_branch[label] = [h.revision for h in heads if h is not None]
    # every skill that has tables also has a branch
    for info in kernel.enabled:
        if info.tables:
            assert info.name in heads_by_branch, f"skill {info.name!r} has tables but no migrations"


def test_upgrade_downgrade_upgrade_each_skill(make_settings: Any, scratch_url: str) -> None:
    kernel = kernel_for(make_settings, scratch_url)
    branches = upgrade(kernel)
    assert branches[0] == "core"
    engine = create_engine(sync_url(scratch_url), poolclass=pool.NullPool)
    tables_after_upgrade = set(inspect(engine).get_table_names())
    for info in reversed(kernel.enabled):
        if info.name in branches:
            downgrade_branch(kernel, info.name)
            left = set(inspect(engine).get_table_names())
            assert not (set(info.tables) & left), f"{info.name} left tables behind"
    upgrade(kernel)
    assert set(inspect(engine).get_table_names()) == tables_after_upgrade
    script = ScriptDirectory.from_config(alembic_config(kernel))
    script_heads = {rev.revision for rev in script.get_revisions("heads")}
    assert current_heads(kernel) and current_heads(kernel) <= script_heads
    engine.dispose()


def test_models_and_migrations_do_not_drift(make_settings: Any, scratch_url: str) -> None:
    kernel = kernel_for(make_settings, scratch_url)
    upgrade(kernel)
    owned = set(kernel.tables)
    engine = create_engine(sync_url(scratch_url), poolclass=pool.NullPool)
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "include_object": lambda obj, name, type_, reflected, compare_to: (
                    type_ != "table" or name in owned
                ),
            },
        )
        diff = compare_metadata(context, SQLModel.metadata)
    engine.dispose()
    assert diff == [], f"models and migrations differ: {diff}"


def test_disabled_skill_tables_are_left_alone(make_settings: Any, scratch_url: str) -> None:
    kernel = Kernel(make_settings(database_url=scratch_url, skills_disabled=["hello"]))
    branches = upgrade(kernel)
    assert "hello" not in branches
    engine = create_engine(sync_url(scratch_url), poolclass=pool.NullPool)
    assert "hello_greetings" not in inspect(engine).get_table_names()
    engine.dispose()
