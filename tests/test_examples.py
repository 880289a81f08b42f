"""The scripts in examples/ run as a user would run them (in this process, as ``python
script.py`` would: as ``__main__``), and print what they promise."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize(
    ("script", "args", "expected"),
    [
        ("art_pipeline.py", ["5"], ["gap@4x+int8", "ProjectedGradientDescent"]),
        ("torchvision_plain_pytorch.py", ["1"], ["after GAP at 4.00x", "after one fine-tuning epoch"]),
        ("black_box_target.py", ["5"], ["deployed", "pgd"]),
    ],
)
def test_example_runs(script, args, expected, capsys, monkeypatch):
    monkeypatch.setattr("sys.argv", [str(EXAMPLES / script), *args])  # as `python script ARGS`
    runpy.run_path(str(EXAMPLES / script), run_name="__main__")
    printed = capsys.readouterr().out
    assert all(text in printed for text in expected), printed
