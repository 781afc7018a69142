"""An import-linter contract type: skills import one another only through declared dependencies.

``lint-imports`` (``python3 run.py lint``) checks it with the contracts in ``pyproject.toml``::

    [tool.importlinter]
    contract_types = ["declared_dependencies: core.testing.importlint.DeclaredDependencies"]

    [[tool.importlinter.contracts]]
    name = "Skills import each other only through declared dependencies"
    type = "declared_dependencies"
    skills_package = "skills"

A module of skill A may import skill B only if A's manifest (``SKILL.requires``) names B, and
then only B's package or its public module (``api``). The manifests are read the way the
kernel reads them, through the ``soundhive.skills`` entry points, so the rule follows each
skill's own declaration and there is no second list to keep in step with it. A third-party
package of skills can use the same contract with its own ``skills_package``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from importlinter import Contract, ContractCheck, fields, output

from core.plugins import ENTRY_POINT_GROUP, discover


@dataclass(frozen=True)
class Manifest:
    """What the contract needs of a skill: its name and the skills it requires."""

    name: str
    requires: frozenset[str]


def installed_manifests(skills_package: str) -> dict[str, Manifest]:
    """Sub-package (``user_profile``) → manifest, for the skills under ``skills_package``."""
    found = {}
    for entry in discover():
        parts = entry.value.split(".")
        if parts[0] != skills_package or len(parts) < 2:
            continue
        skill = entry.load().SKILL
        found[parts[1]] = Manifest(skill.name, frozenset(skill.requires))
    return found


def undeclared_imports(
    graph: Any, skills_package: str, manifests: dict[str, Manifest], public_module: str = "api"
) -> list[dict[str, Any]]:
    """Every import in ``graph`` from one skill into another that breaks the rule, with why."""
    broken = []
    for package, manifest in sorted(manifests.items()):
        root = f"{skills_package}.{package}"
        if root not in graph.modules:
            continue
        for importer in sorted({root} | graph.find_descendants(root)):
            for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                parts = imported.split(".")
                if parts[0] != skills_package or len(parts) < 2 or parts[1] == package:
                    continue
                other = manifests.get(parts[1])
                if other is None:
                    reason = f"{skills_package}.{parts[1]} is not a skill"
                elif other.name not in manifest.requires:
                    reason = f"{other.name!r} is not in the SKILL.requires of {manifest.name!r}"
                elif len(parts) > 2 and parts[2] != public_module:
                    reason = f"only {skills_package}.{parts[1]}.{public_module} is public"
                else:
                    continue
                details = graph.get_import_details(importer=importer, imported=imported)
                lines = sorted({d["line_number"] for d in details})
                broken.append(
                    {"importer": importer, "imported": imported, "lines": lines, "why": reason}
                )
    return broken


class DeclaredDependencies(Contract):
    """Skills under ``skills_package`` import each other only through declared dependencies,
    and only their public module (``public_module``, default ``api``)."""

    type_name = "declared_dependencies"
    skills_package = fields.StringField()
    public_module = fields.StringField(required=False, default="api")

    def check(self, graph: Any, verbose: bool) -> ContractCheck:
        package = str(self.skills_package)
        manifests = installed_manifests(package)
        if not manifests:
            raise ValueError(f"no skills of package {package!r} in {ENTRY_POINT_GROUP!r}")
        output.verbose_print(verbose, f"Manifests of {len(manifests)} skills read.")
        broken = undeclared_imports(graph, package, manifests, str(self.public_module))
        return ContractCheck(kept=not broken, metadata={"broken": broken})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for item in check.metadata["broken"]:
            lines = ", ".join(f"l.{n}" for n in item["lines"])
            output.print_error(f"{item['importer']} -> {item['imported']} ({lines}):", bold=True)
            output.print_error(f"    {item['why']}", bold=False)
            output.new_line()
