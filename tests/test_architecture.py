"""The layering of docs/ARCHITECTURE.md, enforced: each layer imports only from layers below it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "gap_art"

LAYERS = [
    ("errors", "runtime", "validation", "registry", "settings", "jsonable"),
    ("data", "models", "training"),
    ("pruning", "quantization"),
    ("checkpoint", "classifiers", "export"),
    ("attacks",),
    ("evaluation",),
    ("defences",),
    ("bench",),
    ("cli", "__main__", "__init__"),
]
"""Bottom-up; a module may import from its own layer and every layer below."""

NO_ART = {
    "errors",
    "runtime",
    "settings",
    "jsonable",
    "validation",
    "registry",
    "data",
    "models",
    "training",
    "pruning",
    "quantization",
    "checkpoint",
    "export",
}
"""Layers that stay plain PyTorch: no ``art`` import (pruning/ imports no ART)."""


def _unit(path: Path) -> str:
    """The top-level unit a source file belongs to (``pruning`` for pruning/masks.py)."""
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _level(unit: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if unit in layer)


SOURCES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_each_module_imports_only_from_its_layer_or_below(path):
    unit = _unit(path)
    for name in _imports(path):
        parts = name.split(".")
        if parts[0] == "art":
            assert unit not in NO_ART, f"{path.name} ({unit}) imports ART: {name}"
        if parts[0] == "gap_art" and len(parts) > 1:
            imported = parts[1]
            assert _level(imported) <= _level(unit), f"{path.name} ({unit}) imports the higher layer {name}"


def test_every_unit_has_a_layer():
    units = {_unit(p) for p in SOURCES}
    assert units <= {u for layer in LAYERS for u in layer}, units - {u for layer in LAYERS for u in layer}


BENCH_LAYERS = [
    (
        "config",
        "attack_roles",
        "config_files",
        "target_names",
        "comparisons",
        "seeds",
        "document",
        "threats",
        "pool_sources",
    ),
    ("method_settings",),
    ("rows", "task_results", "store"),
    ("inputs", "context"),
    ("graph",),
    ("target_spec",),
    ("training_curves",),
    ("targets", "epoch_picks"),
    ("tasks",),
    ("study",),
    ("executors", "resume"),
    ("flags", "summary", "primary", "catalogue"),
    ("palette",),
    (
        "verdict",
        "sections",
        "comparison_sections",
        "curve_sections",
        "plots",
        "drawing",
        "goal",
        "evaluation_report",
    ),
    ("report",),
    ("compare", "evaluate"),
    ("__init__",),
]
"""Inside ``bench/``, bottom-up: the configuration and files; the rows, the typed task results
and the cache that stores them; what tasks share; the task machinery; what a target is, then
the task kinds (targets, then the others); the study's graph; the executors; then reading
the rows (statistics, verdict, sections, plots, the report)."""


def _bench_level(module: str) -> int:
    return next(i for i, layer in enumerate(BENCH_LAYERS) if module in layer)


BENCH = sorted((PACKAGE / "bench").glob("*.py"))


def _gap_art_imports(path: Path) -> set[str]:
    """Every gap_art module ``path`` imports, at module level or inside a function."""
    return {name for name in _imports(path) if name.startswith("gap_art.")}


@pytest.mark.parametrize("path", BENCH, ids=lambda p: p.name)
def test_bench_modules_import_only_their_layer_or_below(path):
    level = _bench_level(path.stem)
    for name in _gap_art_imports(path):
        if name.startswith("gap_art.bench."):
            imported = name.split(".")[2]
            assert _bench_level(imported) <= level, f"bench/{path.name} imports the higher {name}"


def test_every_bench_module_has_a_layer():
    assert {p.stem for p in BENCH} == {m for layer in BENCH_LAYERS for m in layer}


CLI = sorted((PACKAGE / "cli").glob("*.py"))


@pytest.mark.parametrize("path", CLI, ids=lambda p: p.name)
def test_no_cli_command_module_imports_another(path):
    """The command modules are siblings: each imports the shared options and inputs, never
    another command."""
    commands = {p.stem for p in CLI} - {"__init__", "options", "inputs"}
    for name in _gap_art_imports(path):
        if name.startswith("gap_art.cli."):
            imported = name.split(".")[2]
            if path.stem != "__init__":
                assert imported not in commands, f"cli/{path.name} imports the command module {name}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_over_350_lines(path):
    lines = len(path.read_text().splitlines())
    assert lines <= 350, f"{path.relative_to(PACKAGE)} has {lines} lines: split it by what its parts own"


PRESENTATION_IMPORTERS = {
    "__main__.py": "runs the command line",
    "evaluation/__init__.py": "re-exports the public API, the table and file writers included",
    "bench/rows.py": "writes finished rows as CSV with evaluation/export's writer",
    "bench/__init__.py": "the public API: runs a study, then writes its report",
    "bench/config.py": "checks that the unkeyed `primary` names this study's targets",
}
"""The computing modules that may import report-only code, each with the reason."""


def _presentation(relative: str) -> bool:
    from gap_art.bench.inputs import PRESENTATION_MODULES

    return relative.startswith(PRESENTATION_MODULES)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_computing_code_does_not_import_report_only_code(path):
    """An edit to a report-only module keeps every cached task (its source is not hashed into task
    ids), so no task may run its code: only the modules named above import one."""
    relative = path.relative_to(PACKAGE).as_posix()
    if _presentation(relative) or relative in PRESENTATION_IMPORTERS:
        return
    for name in _gap_art_imports(path):
        module = name.removeprefix("gap_art.").replace(".", "/")
        imported = f"{module}.py" if (PACKAGE / f"{module}.py").exists() else f"{module}/"
        assert not _presentation(imported), f"{relative} imports the report-only {name}"
