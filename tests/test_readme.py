"""Every import README.md and the documentation pages show works: their code blocks' import
lines, and each ``gap_art.module.Name(...)`` they tell a reader to call."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = "\n".join(path.read_text() for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])
FENCED = re.findall(r"```python\n(.*?)```", README, re.S)
IMPORT_LINES = sorted(
    {
        line.strip()
        for block in FENCED
        for line in block.splitlines()
        if re.match(r"\s*(from \S+ )?import ", line)
    }
)
CALLED = sorted(set(re.findall(r"`(gap_art(?:\.\w+)+)\(", README)))


def test_readme_shows_imports_and_calls():
    assert IMPORT_LINES and CALLED


@pytest.mark.parametrize("line", IMPORT_LINES)
def test_each_import_line_of_the_readme_runs(line):
    exec(line, {})


@pytest.mark.parametrize("dotted", CALLED)
def test_each_name_the_readme_calls_resolves(dotted):
    parts = dotted.split(".")
    for split in range(len(parts) - 1, 0, -1):  # the longest importable module, then attributes
        try:
            found = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for name in parts[split:]:
            found = getattr(found, name)
        assert callable(found), dotted
        return
    pytest.fail(f"{dotted}: no module of it imports")
