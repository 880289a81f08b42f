"""The layering of docs/ARCHITECTURE.md, enforced: each layer imports only from layers below it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "gap_art"

LAYERS = [
    ("runtime", "validation", "registry"),
    ("data", "models", "training"),
    ("pruning", "quantization"),
    ("checkpoint", "classifiers"),
    ("attacks",),
    ("evaluation",),
    ("defences",),
    ("bench",),
    ("cli", "cli_options", "cli_models", "cli_evaluate", "__main__", "__init__"),
]
"""Bottom-up; a module may import from its own layer and every layer below."""

NO_ART = {
    "runtime",
    "validation",
    "registry",
    "data",
    "models",
    "training",
    "pruning",
    "quantization",
    "checkpoint",
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
