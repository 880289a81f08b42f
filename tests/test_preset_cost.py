"""benchmarks/preset_cost.py costs a whole preset from a run of part of one seed: every task by
the same task measured (in any seed), else by its kind's mean, with pauses taken out."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from gap_art.bench import BenchConfig
from gap_art.bench.study import build_graph

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))  # the script imports its sibling common.py
spec = importlib.util.spec_from_file_location("preset_cost", ROOT / "benchmarks" / "preset_cost.py")
assert spec is not None and spec.loader is not None
preset_cost = importlib.util.module_from_spec(spec)
spec.loader.exec_module(preset_cost)


def test_each_task_of_the_whole_study_is_costed_by_the_same_task_or_its_kinds_mean():
    one = BenchConfig(methods=["magnitude"], compression=[4.0], attacks=["pgd"], defences=[], int8=False)
    run = build_graph(one).tasks
    whole = build_graph(BenchConfig(**{**one.to_dict(), "seeds": [0, 1, 2]})).tasks
    source = next(t for t in run.values() if t.kind == "source")
    crafts = [t for t in run.values() if t.kind == "craft"]
    seconds = {source.id: 10.0, crafts[0].id: 4.0}  # the other crafts and sources not reached
    kinds = preset_cost.estimate(run, whole, seconds)

    def same_as(measured) -> int:
        return sum(preset_cost.task_key(t) == preset_cost.task_key(measured) for t in whole.values())

    n_sources = sum(t.kind == "source" for t in whole.values())
    assert same_as(source) >= 3  # the same training in each of the 3 seeds
    assert kinds["source"] == {
        "tasks": n_sources, "seconds": 10.0 * n_sources, "same_task": same_as(source),
        "kind_mean": n_sources - same_as(source),
    }  # fmt: skip
    n_crafts = sum(t.kind == "craft" for t in whole.values())
    assert kinds["craft"]["seconds"] == pytest.approx(4.0 * n_crafts)
    assert kinds["craft"]["same_task"] == same_as(crafts[0]) and kinds["craft"]["tasks"] == n_crafts
    assert kinds["target"]["seconds"] == 0.0  # no target measured: nothing to extrapolate from


def test_pauses_come_out_of_the_tasks_they_overlap(tmp_path):
    log = tmp_path / "pauses.log"
    log.write_text("stop 100\ncont 130\nstop 200\ncont 210\n")
    intervals = preset_cost.pauses(log)
    assert intervals == [(100.0, 130.0), (200.0, 210.0)]
    assert preset_cost.paused_within(90.0, 205.0, intervals) == 35.0
    assert preset_cost.paused_within(0.0, 50.0, intervals) == 0.0
