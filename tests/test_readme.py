"""Every import README.md shows works: its code blocks' import lines, and each
``gap_art.module.Name(...)`` it tells a reader to call."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
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
