"""benchmarks/gpu_harden.sh, the GPU run of the harden study, works end to end on CPU with a
tiny subset (its --tiny mode, with one method and one ART defence; its whole method and defence
lists checked through its plan), so that a lent GPU is spent on the study, not on debugging."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gap_art.bench import preset

ROOT = Path(__file__).resolve().parents[1]


def _script(*args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, **env, "PYTHON": sys.executable}
    return subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_harden.sh"), *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_gpu_harden_script_plans_every_method_of_the_tiny_study():
    done = _script("--tiny", DRY_RUN="1")
    assert done.returncode == 0, done.stderr[-3000:]
    plan = json.loads(done.stdout)
    assert plan["config"]["arch"] == "resnet20-28" and plan["config"]["device"] == "cpu"
    assert plan["config"]["methods"] == [
        "gap-grad",
        "random",
        "magnitude",
        "gap-iter",
        "gap-grad+tat",
        "magnitude+tat",
        "magnitude+tat-fgsm",
        "gap-grad+gal",
        "ensemble-adv>magnitude",
    ]
    assert plan["config"]["defences"] == preset("harden").defences and plan["cells"] > 0


@pytest.mark.parametrize("mode", ["gpu", "--lease"])
def test_the_gpu_modes_train_on_the_full_training_set_and_attack_1000_images(mode):
    """The GPU modes run the reference's regime, whatever the CPU preset's scale: every training
    image (54,000 after the validation split) and 1,000 test images a seed."""
    done = _script(*([] if mode == "gpu" else [mode]), DRY_RUN="1", DEVICE="cpu")
    assert done.returncode == 0, done.stderr[-3000:]
    config = json.loads(done.stdout)["config"]
    assert config["arch"] == "resnet20-28" and config["n_train"] is None and config["n_test"] == 1000


def test_gpu_harden_script_runs_the_harden_study_tiny_on_cpu(tmp_path):
    out = tmp_path / "out"
    done = _script("--tiny", OUT=str(out), WORK=str(tmp_path / "work"), METHODS="magnitude", DEFENCES="fbf")
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["arch"] == "resnet20-28"
    targets = {row["target"] for row in results["rows"]}
    assert {"magnitude@4x", "art:fbf"} <= targets
    assert not [row for row in results["rows"] if row.get("error")]
    assert "wall seconds" in (out / "environment.txt").read_text()
    assert (out / "report.md").is_file() and (out / "report.html").is_file()
    assert _script("--big").returncode == 2
