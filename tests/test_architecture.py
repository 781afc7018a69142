"""Architecture rules, checked on the source: core never imports a skill; a skill imports
another skill only through that skill's public ``api`` module, and only if it requires it."""

from __future__ import annotations

import ast
from importlib.metadata import entry_points
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def test_core_never_imports_a_skill() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in (ROOT / "core").rglob("*.py")
        for line, module in imported_modules(path)
        if module == "skills" or module.startswith("skills.")
    ]
    assert offenders == []


def built_in_skills() -> dict[str, str]:
    """Package name (``user_profile``) → skill name (``user-profile``)."""
    return {
        ep.value.split(".")[1]: ep.name
        for ep in entry_points(group="soundhive.skills")
        if ep.value.startswith("skills.")
    }


@pytest.mark.parametrize("package", sorted(built_in_skills()))
def test_skills_import_others_only_through_declared_public_modules(package: str) -> None:
    import importlib

    skills = built_in_skills()
    requires = set(importlib.import_module(f"skills.{package}").SKILL.requires)
    offenders = []
    for path in (ROOT / "skills" / package).rglob("*.py"):
        for line, module in imported_modules(path):
            parts = module.split(".")
            if parts[0] != "skills" or len(parts) < 2 or parts[1] == package:
                continue
            other = skills.get(parts[1])
            where = f"{path.relative_to(ROOT)}:{line} imports {module}"
            if other is None:
                offenders.append(f"{where}: not a skill")
            elif other not in requires:
                offenders.append(f"{where}: '{other}' is not in SKILL.requires")
            elif len(parts) > 2 and parts[2] != "api":
                offenders.append(f"{where}: only skills.{parts[1]}.api is public")
    assert offenders == []
