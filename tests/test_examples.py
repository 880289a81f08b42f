"""The scripts in examples/ run as a user would run them, and print what they promise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("art_pipeline.py", ["gap@4x+int8", "ProjectedGradientDescent"]),
        ("torchvision_plain_pytorch.py", ["after GAP at 4.00x", "after one fine-tuning epoch"]),
        ("black_box_target.py", ["deployed", "pgd"]),
    ],
)
def test_example_runs(script, expected):
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert all(text in done.stdout for text in expected), done.stdout
