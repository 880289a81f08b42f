"""End to end: wall time and peak memory of `gap-art bench` presets, and the local
executor against Ray with 2 workers, with the measured per-task cost.

Run: python benchmarks/end_to_end.py [--presets quick fashion] [--ray]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine, write_results

from gap_art.evaluation.export import fixed_width_table

TARGETS = {"quick": 60.0, "fashion": 20 * 60.0, "harden": 30 * 60.0}


def run_bench(args: list[str]) -> dict:
    """Run `gap-art bench` in a child process; wall time and the child's peak RSS."""
    out = Path(tempfile.mkdtemp(prefix="gap-art-bench-"))
    command = [
        sys.executable,
        "-m",
        "gap_art",
        "bench",
        *args,
        "--out",
        str(out),
        "--quiet",
        "--allow-failures",
    ]
    start = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    metas = [json.loads(p.read_text()) for p in (out / "cache").glob("*.json")]
    task_seconds = sorted(m["time_s"] for m in metas if m.get("time_s") is not None)
    rows = json.loads((out / "results.json").read_text())["rows"]
    return {
        "args": args,
        "wall_s": wall,
        "peak_rss_mb": peak_kib / 1024 if peak_kib > before else None,
        "cells": len(rows),
        "failed": sum(1 for r in rows if r.get("error")),
        "timed_tasks": len(task_seconds),
        "task_seconds_total": sum(task_seconds),
        "out": str(out),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["quick", "fashion"], choices=sorted(TARGETS))
    parser.add_argument("--ray", action="store_true", help="also: one fashion seed, local vs Ray (2 workers)")
    args = parser.parse_args()
    records, rows = [], []
    for name in args.presets:
        figures = run_bench(["--preset", name])
        figures.update(preset=name, target_s=TARGETS[name])
        records.append(figures)
        rows.append(
            [
                name,
                f"{figures['wall_s']:.1f}",
                f"{TARGETS[name]:.0f}",
                f"{figures['peak_rss_mb']:.0f}",
                figures["cells"],
                figures["failed"],
            ]
        )
    scaling = []
    if args.ray:
        for executor in ("local", "ray"):
            extra = ["--executor", executor, "--cpus-per-task", "1"]
            figures = run_bench(["--preset", "fashion", "--seeds", "0", *extra])
            figures.update(executor=executor)
            scaling.append(figures)
    print(machine())
    print(fixed_width_table(["preset", "wall s", "target s", "peak MB", "cells", "failed"], rows))
    for figures in scaling:
        per_task = figures["task_seconds_total"] / max(figures["timed_tasks"], 1)
        print(
            f"fashion, one seed, {figures['executor']}: {figures['wall_s']:.1f} s wall; "
            f"{figures['timed_tasks']} timed tasks, {per_task:.2f} s each on average"
        )
    write_results("end_to_end", {"presets": records, "executors": scaling})


if __name__ == "__main__":
    main()
