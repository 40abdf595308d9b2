"""The architecture the tree shows is the one the code keeps: each subpackage of linconv imports
only the layers below it, and no module outside a relation's own names a relation by string."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from linconv.relations import FAMILIES, names

ROOT = Path(__file__).resolve().parent.parent
LINCONV = ROOT / "linconv"

# What each part of linconv may import (besides itself, torch, hypothesis, pytest and the standard
# library): lower layers only. The order is the one docs/architecture.md draws.
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "converters": {"core"},
    "lanes": {"core"},
    "errormodel": {"core", "lanes"},
    "measure": {"core", "lanes", "errormodel"},
    "known_bugs": {"core"},
    "relations": {"core", "lanes", "errormodel", "measure", "converters", "strategies"},
    "search": {"core", "lanes", "known_bugs", "measure"},
    "timing": {"core", "lanes", "measure"},
    "corpus": {"core", "lanes", "measure", "relations", "known_bugs"},
    "runreport": {"core", "lanes", "timing", "relations"},
    "gate": {"core", "runreport", "timing"},
    "faults": {"core", "lanes", "errormodel", "measure", "relations", "search", "converters"},
    "testing": {"core", "lanes", "errormodel", "measure"},
    "models": {"core", "lanes", "errormodel", "measure", "relations", "timing", "corpus", "runreport"},
    "calibration": {"core", "lanes", "errormodel", "relations", "search"},
    "plugins": {
        *("core", "lanes", "errormodel", "measure", "relations", "search", "timing", "corpus", "runreport"),
        *("faults", "known_bugs"),
    },
    "gpurun": {"core", "lanes", "measure", "relations", "runreport"},
    "pytest_plugin": {"core", "lanes", "testing"},  # the users' plugin: never the suite's plugins
    "commands": set(),  # the top: anything
}
TOP_LEVEL = {"__init__", "__main__"}


def _part(path: Path) -> str:
    relative = path.relative_to(LINCONV)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def _is_part(name: str) -> bool:
    return (LINCONV / name).is_dir() or (LINCONV / f"{name}.py").is_file()


def _imports(path: Path) -> set[str]:
    """The linconv parts (and the top-level ``strategies`` package) a module imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        modules = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for module in modules:
            parts = module.split(".")
            if parts[0] == "strategies":
                found.add("strategies")
            elif parts[0] == "linconv" and len(parts) > 1 and _is_part(parts[1]):
                found.add(parts[1])
    return found


MODULES = sorted(p for p in LINCONV.rglob("*.py") if _part(p) not in TOP_LEVEL)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_module_imports_only_lower_layers(path):
    part = _part(path)
    assert part in ALLOWED, f"{part}: a new part of linconv must take its place in ALLOWED (and docs/architecture.md)"
    if part == "commands":
        return
    wrong = _imports(path) - ALLOWED[part] - {part}
    assert not wrong, f"{path.relative_to(ROOT)} ({part}) imports {sorted(wrong)}, a layer at or above it"


def test_the_strategies_import_only_the_core():
    for path in (ROOT / "strategies").glob("*.py"):
        assert _imports(path) <= {"core", "strategies"}, path


def _relation_names_as_strings(path: Path) -> list[tuple[int, str]]:
    relations = set(names())
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in relations
    ]


def test_no_module_outside_a_relation_and_the_fault_catalogue_names_a_relation():
    own = {LINCONV / "relations" / f"{family}.py" for family in FAMILIES}
    catalogue = LINCONV / "faults" / "catalogue"
    # the known bugs' catalogue ties a bug of one formulation's code to its relations
    # (KnownBug.relations), as a fault names the relation it breaks
    known_bugs = LINCONV / "known_bugs" / "catalogue.py"
    offenders = {
        str(path.relative_to(ROOT)): found
        for path in LINCONV.rglob("*.py")
        if path not in own
        and path != known_bugs
        and catalogue not in path.parents
        and (found := _relation_names_as_strings(path))
    }
    assert not offenders, f"relations named by string outside their own module: {offenders}"
