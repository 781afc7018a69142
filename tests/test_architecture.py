"""Architecture rules, checked on the source: core never imports a skill; a skill imports
another skill only through that skill's public ``api`` module, and only if it requires it."""

from __future__ import annotations

import ast
from pathlib import Path

from core.testing.importlint import Manifest, installed_manifests, undeclared_imports

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


def test_skills_import_others_only_through_declared_public_modules() -> None:
    """The repository keeps the rule ``lint-imports`` checks (``core.testing.importlint``)."""
    import grimp

    graph = grimp.build_graph("core", "skills")
    manifests = installed_manifests("skills")
    assert {"user_profile", "music_streaming_basic", "activity_feed"} <= set(manifests)
    assert undeclared_imports(graph, "skills", manifests) == []


def test_the_contract_finds_each_kind_of_undeclared_import() -> None:
    """On a graph with one import of each kind: a declared skill's ``api`` passes; a
    declared skill's private module, an undeclared skill and a package that is no skill do
    not; a skill's imports of itself and of the kernel are its own business."""
    import grimp

    graph = grimp.ImportGraph()
    for module in ("skills.a", "skills.a.x", "skills.a.y", "skills.b", "skills.b.api"):
        graph.add_module(module)
    for module in ("skills.b.repository", "skills.c", "skills.c.api", "skills.zzz", "core"):
        graph.add_module(module)
    edges = {
        "skills.b.api": 3,
        "skills.b": 4,
        "skills.b.repository": 5,
        "skills.c.api": 6,
        "skills.zzz": 7,
        "skills.a.y": 8,
        "core": 9,
    }
    for imported, line in edges.items():
        graph.add_import(
            importer="skills.a.x", imported=imported, line_number=line, line_contents="import"
        )
    manifests = {
        "a": Manifest("skill-a", frozenset({"skill-b"})),
        "b": Manifest("skill-b", frozenset()),
        "c": Manifest("skill-c", frozenset()),
    }
    found = {
        (item["imported"], tuple(item["lines"])): item["why"]
        for item in undeclared_imports(graph, "skills", manifests)
    }
    assert found == {
        ("skills.b.repository", (5,)): "only skills.b.api is public",
        ("skills.c.api", (6,)): "'skill-c' is not in the SKILL.requires of 'skill-a'",
        ("skills.zzz", (7,)): "skills.zzz is not a skill",
    }
