"""benchmarks/gpu_harden.sh, the GPU run of the harden study, works end to end on CPU with a
tiny subset (its --tiny mode), so that a lent GPU is spent on the study, not on debugging."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_harden_script_runs_the_harden_study_tiny_on_cpu(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path / "out"), "WORK": str(tmp_path / "work")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    done = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_harden.sh"), "--tiny"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "out"
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["arch"] == "resnet20-28"
    targets = {row["target"] for row in results["rows"]}
    for method in (
        "gap-grad",
        "random",
        "magnitude",
        "gap-iter",
        "gap-grad+tat",
        "magnitude+tat",
        "gap-grad+gal",
    ):
        assert f"{method}@4x" in targets
    assert {"art:fbf", "art:ensemble-adv"} <= targets
    assert not [row for row in results["rows"] if row.get("error")]
    assert "wall seconds" in (out / "environment.txt").read_text()
    assert (out / "report.md").is_file() and (out / "report.html").is_file()
    usage = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_harden.sh"), "--big"], capture_output=True)
    assert usage.returncode == 2
