"""One seed of the harden preset on a baseline commit and on this checkout, side by side on the
same machine (issue 35, item 3: at least 3x faster than f3bfad3).

Both runs do the study the harden preset defined on the baseline commit
(``benchmarks/configs/harden-f3bfad3.toml`` holds it for this checkout), one after the other in
fresh processes with the same threads, each into an empty folder. Each run's profile by task kind
comes from its own cache (every task records its seconds; ids start with the task's kind); what
the tasks do not account for (the cells, the report) is "cells and report". Run it on an idle
machine:

    python benchmarks/engine_speedup.py --baseline f3bfad3 --seed 0 --name engine_speedup
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="f3bfad3", help="Commit to time against.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", help="Write benchmarks/results/<name>.json.")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gap-art-speedup-"))
    baseline = work / "baseline"
    subprocess.run(["git", "worktree", "add", "--detach", str(baseline), args.baseline], cwd=REPO, check=True)
    runs = {
        "current": (REPO, ["--config", str(CONFIG)]),
        "baseline": (baseline, ["--preset", "harden"]),
    }
    timings = {}
    try:
        for name, (code, options) in runs.items():
            out = work / name
            wall = run_study(code, [*options, "--seeds", str(args.seed)], out)
            timings[name] = {"wall_s": round(wall, 1), "by_task_kind_s": by_task_kind(out, wall)}
            print(f"{name}: {wall:.1f} s", flush=True)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(baseline)], cwd=REPO, check=False)
    speedup = timings["baseline"]["wall_s"] / timings["current"]["wall_s"]
    print(f"speed-up: {speedup:.2f}x")
    print(json.dumps(timings, indent=1))
    if args.name:
        write_results(args.name, {"baseline": args.baseline, "seed": args.seed,
                                  "speedup": round(speedup, 2), **timings})  # fmt: skip


if __name__ == "__main__":
    main()
