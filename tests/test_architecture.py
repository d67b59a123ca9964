"""The arrows between packages (docs/architecture.md), read from the source: imports point one way,
no two modules import each other, and no module is over 400 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("dcgan", "experiment", "spaces", "search", "reports")
# package -> the project packages it may import (besides itself)
ALLOWED = {"dcgan": set(), "experiment": {"dcgan"}, "spaces": {"dcgan"},
           "search": {"dcgan", "experiment", "spaces"}, "reports": {"dcgan", "experiment"}}
FORBIDDEN_THIRD_PARTY = {"dcgan": {"ray", "optuna", "plotly"}, "experiment": {"ray", "plotly"},
                         "spaces": {"ray", "plotly"}, "reports": {"ray"}, "search": {"plotly"}}
MAX_LINES = 400


def modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Every module `name` imports, anywhere in the file; `from pkg import sub` counts as pkg.sub
    when pkg.sub is a module."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known else node.module
                      for a in node.names}
    return found


GRAPH = {name: imports_of(name, path, set(modules())) for name, path in modules().items()}


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_point_one_way(package):
    for name, targets in GRAPH.items():
        if name.split(".")[0] != package:
            continue
        for target in targets:
            top = target.split(".")[0]
            assert top not in FORBIDDEN_THIRD_PARTY[package], f"{name} imports {target}"
            if top in PACKAGES and top != package:
                assert top in ALLOWED[package], f"{name} imports {target}: {package}/ may not import {top}/"


def test_no_two_modules_import_each_other():
    internal = {name: {t for t in targets if t in GRAPH} for name, targets in GRAPH.items()}

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            node = todo.pop()
            if node == goal:
                return True
            if node not in seen:
                seen.add(node)
                todo += internal[node]
        return False

    for name, targets in internal.items():
        for target in targets:
            # a package's __init__ may re-export its own modules: that is not a cycle of jobs
            if name == target or target.startswith(name + "."):
                continue
            assert not reaches(target, name), f"{name} and {target} import each other (directly or through others)"


@pytest.mark.parametrize("name", sorted(modules()))
def test_no_module_over_400_lines(name):
    lines = len(modules()[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{modules()[name]} has {lines} lines; split it by job"
