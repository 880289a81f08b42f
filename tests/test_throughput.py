"""benchmarks/throughput.py, the engine's throughput against the machine's peak, runs (its
--quick mode, in this process): every step the bench runs gets a rate and a share of the peak,
at each precision and thread count asked for."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "throughput.py"


def test_throughput_measures_every_step_against_the_peak(monkeypatch, capsys):
    monkeypatch.setattr(
        sys, "argv", [str(SCRIPT), "--quick", "--precisions", "float32,bfloat16", "--threads", "1"]
    )
    monkeypatch.syspath_prepend(str(SCRIPT.parent))  # its `common` module, as `python SCRIPT` finds it
    runpy.run_path(str(SCRIPT), run_name="__main__")
    printed = capsys.readouterr().out
    assert "float32 matmul peak" in printed
    steps = (
        "train (1 epoch)",
        "craft pgd",
        "craft mifgsm",
        "craft cw",
        "craft pgd, ensemble of 3",
        "predict",
    )
    rows = [line for line in printed.splitlines() if line.startswith("lenet-wide")]
    assert [next(s for s in reversed(steps) if s in line) for line in rows] == [
        s for s in steps for _ in range(2)
    ]
    assert [line.split()[-4] for line in rows] == ["float32", "bfloat16"] * len(steps)
    assert {line.split()[-5] for line in rows} == {"1"}  # the thread count asked for
    assert all(line.rstrip().endswith("%") for line in rows)


def test_memory_format_times_each_step_in_both_layouts(monkeypatch, capsys):
    """benchmarks/memory_format.py (its --quick mode, in this process) times every step the bench
    runs in both layouts and says how far their outputs differ."""
    script = SCRIPT.parent / "memory_format.py"
    monkeypatch.setattr(sys, "argv", [str(script), "--quick"])
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    runpy.run_path(str(script), run_name="__main__")
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("small-cnn")]
    assert [line.split("  ")[1].strip() for line in rows] == ["train (1 epoch)", "craft pgd", "predict"]
    assert all(line.split()[-3].endswith("x") for line in rows)  # the speed-up column


def test_engine_speedup_splits_a_run_by_task_kind(monkeypatch, tmp_path):
    """benchmarks/engine_speedup.py reads each run's seconds by task kind from its cache (the
    kind is the id's prefix, ``target-...``) and counts what no task accounts for as the cells
    and report, so the kinds add up to the wall time."""
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    by_task_kind = runpy.run_path(str(SCRIPT.parent / "engine_speedup.py"))["by_task_kind"]
    cache = tmp_path / "cache"
    cache.mkdir()
    for name, seconds in [("source-aa", 2.0), ("craft-bb", 3.0), ("craft-cc", 4.5), ("target-dd", 1.0)]:
        (cache / f"{name}.json").write_text(f'{{"time_s": {seconds}}}')
    (cache / "target-ee.json").write_text('{"error": "failed before timing"}')
    assert by_task_kind(tmp_path, wall=20.0) == {
        "cells and report": 9.5,
        "craft": 7.5,
        "source": 2.0,
        "target": 1.0,
    }


def test_structured_speed_times_every_compression_against_the_dense_model(monkeypatch, capsys):
    """benchmarks/structured_speed.py (its --quick mode, in this process): the dense, irregular
    4x and channel 2x and 4x models, each step float32 and int8, as a ratio to the dense model."""
    script = SCRIPT.parent / "structured_speed.py"
    monkeypatch.setattr(sys, "argv", [str(script), "--quick"])
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    runpy.run_path(str(script), run_name="__main__")
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("small-cnn")]
    models = {" ".join(row[1:3]) if row[1] != "dense" else "dense" for row in rows}
    assert models == {"dense", "irregular 4x", "channel 2x", "channel 4x"} and len(rows) == 4 * 5
    assert all(row[-1].endswith("x") for row in rows)
    assert all(row[-1] == "1.00x" for row in rows if row[1] == "dense")
