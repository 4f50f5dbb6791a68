"""The layout keeps the promises ARCHITECTURE.md and the test helpers rely on."""

from __future__ import annotations

import ast
import fnmatch
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_architecture_lists_each_module_once() -> None:
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    listed = re.findall(r"^- `((?:slo|devstack)/[\w/]+\.py)`: \S", text, flags=re.MULTILINE)
    modules = sorted(
        str(path.relative_to(ROOT))
        for package in ("slo", "devstack")
        for path in (ROOT / package).rglob("*.py")
    )
    assert sorted(listed) == modules


def _imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, lazily or not (TYPE_CHECKING blocks included)."""
    imported: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module)
    return imported


def test_the_product_imports_nothing_of_the_development_package() -> None:
    # The wheel ships slo/ without devstack/: one import of it would break an installed `slo`.
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            name for name in _imported_modules(path) if name.split(".")[0] == "devstack"
        )
        for path in (ROOT / "slo").rglob("*.py")
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_the_wheel_packages_the_product_only() -> None:
    # setuptools' package discovery keeps the top-level packages matching `include` (fnmatch).
    with (ROOT / "pyproject.toml").open("rb") as file:
        include = tomllib.load(file)["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {path.parent.name for path in ROOT.glob("*/__init__.py")}
    shipped = {name for name in packages if any(fnmatch.fnmatchcase(name, pattern) for pattern in include)}
    assert "devstack" in packages
    assert shipped == {"slo"}
