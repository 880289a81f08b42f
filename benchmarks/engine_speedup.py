"""One seed of the harden preset on a baseline commit and on this checkout, side by side on the
same machine (issue 35, item 3: at least 3x faster than f3bfad3).

Both runs do the study the harden preset defined on the baseline commit
(``benchmarks/configs/harden-f3bfad3.toml`` holds it for this checkout), one after the other in
fresh processes with the same threads, each into an empty folder. Each run's profile by task kind
comes from its own cache (every task records its seconds; ids start with the task's kind); what
the tasks do not account for (the cells, the report) is "cells and report". With
``--precisions float32,bfloat16`` this checkout runs once per precision (``bfloat16``: the opt-in
autocast, on a CPU with AVX512-BF16 or AMX); each run also gives the white-box accuracy of the
dense model under each attack with its interval, so a faster precision is seen to attack as hard.
Run it on an idle machine:

    python benchmarks/engine_speedup.py --baseline f3bfad3 --seed 0 --name engine_speedup
    python benchmarks/engine_speedup.py --precisions float32,bfloat16 --name engine_speedup_bfloat16
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from common import write_results

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "benchmarks" / "configs" / "harden-f3bfad3.toml"
CLI = "from gap_art.cli import main; main()"


def run_study(code: Path, bench_args: list[str], out: Path) -> float:
    """Wall seconds of ``gap-art bench`` run from the sources in ``code`` into ``out``."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    options = ["--out", str(out), "--quiet", "--allow-failures"]
    command = [sys.executable, "-c", CLI, "bench", *bench_args, *options]
    start = time.perf_counter()
    subprocess.run(command, cwd=code, env=env, check=True)
    return time.perf_counter() - start


def by_task_kind(out: Path, wall: float) -> dict[str, float]:
    """Seconds per task kind, from the ``time_s`` each cached task recorded."""
    seconds: Counter[str] = Counter()
    for record in (out / "cache").glob("*.json"):
        kind = record.stem.rsplit("-", 1)[0]
        seconds[kind] += float(json.loads(record.read_text()).get("time_s") or 0.0)
    seconds["cells and report"] = wall - sum(seconds.values())
    return {kind: round(s, 1) for kind, s in seconds.most_common()}


def dense_whitebox(out: Path) -> dict[str, list[float]]:
    """``attack: [accuracy, low, high]`` of the white-box attacks on the dense model, and its
    clean accuracy under ``clean``, from a run's results.json (95% intervals)."""
    rows = json.loads((out / "results.json").read_text())["rows"]
    dense = [r for r in rows if r["target"] == "dense" and r["threat_model"] == "dense"]
    found = {"clean": [dense[0][f"source_clean_accuracy{s}"] for s in ("", "_ci_low", "_ci_high")]}
    for row in dense:
        found[row["attack"]] = [row[f"source_whitebox_accuracy{s}"] for s in ("", "_ci_low", "_ci_high")]
    return {name: [round(float(v), 4) for v in values] for name, values in found.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="f3bfad3", help="Commit to time against.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--precisions", default="float32", help="This checkout's runs, comma-separated.")
    parser.add_argument("--name", help="Write benchmarks/results/<name>.json.")
    args = parser.parse_args()
    precisions = args.precisions.split(",")
    work = Path(tempfile.mkdtemp(prefix="gap-art-speedup-"))
    baseline = work / "baseline"
    subprocess.run(["git", "worktree", "add", "--detach", str(baseline), args.baseline], cwd=REPO, check=True)
    runs = {
        **{current_name(p): (REPO, ["--config", str(CONFIG), "--precision", p]) for p in precisions},
        "baseline": (baseline, ["--preset", "harden"]),
    }
    timings = {}
    try:
        for name, (code, options) in runs.items():
            out = work / name
            wall = run_study(code, [*options, "--seeds", str(args.seed)], out)
            timings[name] = {"wall_s": round(wall, 1), "by_task_kind_s": by_task_kind(out, wall),
                             "dense_whitebox_accuracy": dense_whitebox(out)}  # fmt: skip
            print(f"{name}: {wall:.1f} s", flush=True)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(baseline)], cwd=REPO, check=False)
    speedups = {
        p: round(timings["baseline"]["wall_s"] / timings[current_name(p)]["wall_s"], 2) for p in precisions
    }
    print(f"speed-ups: {speedups}")
    print(json.dumps(timings, indent=1))
    if args.name:
        result = {"baseline_commit": args.baseline, "seed": args.seed, "speedup": speedups, **timings}
        write_results(args.name, result)


def current_name(precision: str) -> str:
    """The name of this checkout's run at ``precision``: ``current`` at float32, as before."""
    return "current" if precision == "float32" else f"current_{precision}"


if __name__ == "__main__":
    main()
