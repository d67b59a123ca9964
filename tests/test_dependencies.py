"""pyproject.toml's dependencies as the code uses them, read from the source: every package the
product imports is declared (an optional integration in its extra, and imported only inside a
function), every runtime dependency is imported by the product, and the tests import nothing that
is not declared (test-only packages in the `test` extra)."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("dcgan", "experiment", "spaces", "search", "reports")
PROJECT = PRODUCT + ("tests", "bench")
TOP_LEVEL = (ast.Module,)  # an import directly in a module's body runs when the module is imported


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    return normalize(re.match(r"[A-Za-z0-9._-]+", requirement.strip()).group(0))


PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
RUNTIME = {requirement_name(r) for r in PYPROJECT["dependencies"]}
EXTRAS = {extra: {requirement_name(r) for r in reqs} for extra, reqs in PYPROJECT["optional-dependencies"].items()}
DISTRIBUTIONS = importlib.metadata.packages_distributions()


def distributions(top: str) -> set[str]:
    """The distributions that may provide import name `top` (its own name when none installed does)."""
    return {normalize(d) for d in DISTRIBUTIONS.get(top, [])} or {normalize(top)}


def third_party_imports(folder: str) -> dict[str, dict[str, bool]]:
    """import name -> {file: imported at module level}, for every import in `folder` that is neither
    the standard library's nor the project's."""
    out: dict[str, dict[str, bool]] = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        tree = ast.parse(path.read_text())
        at_top = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top in PROJECT or top == "__future__":
                    continue
                files = out.setdefault(top, {})
                files[str(path.relative_to(ROOT))] = files.get(str(path.relative_to(ROOT)), False) or id(node) in at_top
    return out


PRODUCT_IMPORTS = {top: files for pkg in PRODUCT for top, files in third_party_imports(pkg).items()}


def test_the_product_imports_only_what_pyproject_declares():
    optional = set().union(*(names for extra, names in EXTRAS.items() if extra != "test"))
    undeclared = {top: sorted(files) for top, files in PRODUCT_IMPORTS.items()
                  if not distributions(top) & (RUNTIME | optional)}
    assert not undeclared, f"imported by the product, not in pyproject.toml's dependencies: {undeclared}"


def test_an_optional_integration_is_imported_only_when_used():
    """mlflow, wandb: a user without the extra can import every module."""
    eager = {top: [f for f, top_level in files.items() if top_level] for top, files in PRODUCT_IMPORTS.items()
             if not distributions(top) & RUNTIME}
    assert not {top: files for top, files in eager.items() if files}, "an optional extra imported at module level"


@pytest.mark.parametrize("requirement", sorted(RUNTIME))
def test_every_runtime_dependency_is_imported_by_the_product(requirement):
    imported = set().union(*(distributions(top) for top in PRODUCT_IMPORTS))
    assert requirement in imported, f"{requirement} is a runtime dependency that no product module imports"


def test_the_tests_import_only_what_is_declared():
    declared = RUNTIME | set().union(*EXTRAS.values())
    local = {p.stem for p in (ROOT / "tests").rglob("*.py")}  # helpers beside the tests (readback.py)
    missing = {top: sorted(files) for top, files in third_party_imports("tests").items()
               if top not in local and not distributions(top) & declared}
    assert "pytest" in EXTRAS["test"] and not missing, f"imported by the tests, not declared: {missing}"


def test_the_test_extra_holds_nothing_the_product_needs():
    """What the product imports is a runtime dependency or an optional integration's extra, never only
    the test extra's (the tests may install an integration too, to test it)."""
    integrations = set().union(*(reqs for extra, reqs in EXTRAS.items() if extra != "test"))
    needed = set().union(*(distributions(top) for top in PRODUCT_IMPORTS)) - RUNTIME - integrations
    assert not needed & EXTRAS["test"]
