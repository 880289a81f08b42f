"""What a whole preset costs on this machine, from a run of part of it (issue 36 item 7: where a
preset cannot fit its time limit, say what it costs).

A preset at issue 36's scale takes hours on 2 CPU cores, so it is measured on one seed, stopped
when the time set aside runs out (a killed run keeps every finished task in its cache, with the
seconds it took). Every task of the whole preset is then costed by what the run measured for the
same task (its description without the seed: ``craft pgd from replica``, ``build
magnitude+tat@4x``, ``evaluate dense / pgd / dense``), or, for a task the run did not reach, by
the mean of the measured tasks of its kind; the output says how much of the estimate rests on
each. Pauses of the run (``kill -STOP``, to run something else on the machine) are taken out of
the tasks they overlap when their log is given (lines ``stop <epoch seconds>`` and ``cont <epoch
seconds>``). Run the study alone:

    gap-art bench --preset harden --seeds 0 --out runs/harden_seed0    # stop it when you must
    python benchmarks/preset_cost.py runs/harden_seed0 --preset harden --name preset_cost_harden
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path
from statistics import mean

from common import write_results

from gap_art.bench import preset
from gap_art.bench.config import BenchConfig
from gap_art.bench.graph import Task
from gap_art.bench.study import build_graph


def task_key(task: Task) -> str:
    """What a task does, the same in every seed."""
    return re.sub(r" \(seed \d+\)", "", task.spec.describe())


def pauses(log: Path | None) -> list[tuple[float, float]]:
    """The ``(stop, cont)`` intervals of a pause log."""
    if log is None:
        return []
    events = [line.split() for line in log.read_text().splitlines() if line.strip()]
    stops = [float(t) for kind, t in events if kind == "stop"]
    conts = [float(t) for kind, t in events if kind == "cont"]
    return list(zip(stops, conts, strict=False))


def paused_within(start: float, end: float, intervals: list[tuple[float, float]]) -> float:
    """Seconds of ``intervals`` inside ``[start, end]``."""
    return sum(max(0.0, min(end, cont) - max(start, stop)) for stop, cont in intervals)


def measured_seconds(folder: Path, intervals: list[tuple[float, float]]) -> dict[str, float]:
    """Seconds per finished task id: the cache's records (less any pause they overlap) and the
    cells' rows."""
    seconds = {}
    for record in (folder / "cache").glob("*.json"):
        took = float(json.loads(record.read_text()).get("time_s") or 0.0)
        end = record.stat().st_mtime
        seconds[record.stem] = took - paused_within(end - took, end, intervals)
    rows = folder / "rows.jsonl"
    for line in rows.read_text().splitlines() if rows.is_file() else []:
        row = json.loads(line)
        seconds[row["cell_id"]] = float(row.get("cell_time_s") or 0.0)
    return seconds


def estimate(run: dict[str, Task], whole: dict[str, Task], seconds: dict[str, float]) -> dict:
    """The whole study's seconds by kind, each task costed as the module docstring says."""
    by_key, by_kind = defaultdict(list), defaultdict(list)
    for task_id, task in run.items():
        if task_id in seconds:
            by_key[task_key(task)].append(seconds[task_id])
            by_kind[task.kind].append(seconds[task_id])
    kinds: dict[str, dict] = {}
    for task in whole.values():
        kind = kinds.setdefault(task.kind, {"tasks": 0, "seconds": 0.0, "same_task": 0, "kind_mean": 0})
        kind["tasks"] += 1
        if (key := task_key(task)) in by_key:
            kind["seconds"] += mean(by_key[key])
            kind["same_task"] += 1
        elif by_kind[task.kind]:
            kind["seconds"] += mean(by_kind[task.kind])
            kind["kind_mean"] += 1
    return kinds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="The (partial) run's --out folder.")
    parser.add_argument("--preset", required=True, help="The preset whose whole cost to estimate.")
    parser.add_argument("--pauses", type=Path, help="A log of the run's pauses (stop/cont lines).")
    parser.add_argument("--name", help="Write benchmarks/results/<name>.json.")
    args = parser.parse_args()
    config = BenchConfig.from_dict(json.loads((args.folder / "config.json").read_text()), files=False)
    run = build_graph(config).tasks
    seconds = measured_seconds(args.folder, pauses(args.pauses))
    done = [task_id for task_id in run if task_id in seconds]
    whole = estimate(run, build_graph(preset(args.preset)).tasks, seconds)
    one_seed = estimate(run, run, seconds)
    total = sum(kind["seconds"] for kind in whole.values())
    tasks = sum(kind["tasks"] for kind in whole.values())
    result = {
        "preset": args.preset,
        "run_seeds": config.seeds,
        "run_tasks": len(run),
        "run_tasks_done": len(done),
        "run_measured_s": round(sum(seconds[t] for t in done), 1),
        "run_estimated_s": round(sum(kind["seconds"] for kind in one_seed.values()), 1),
        "preset_tasks": tasks,
        "preset_estimated_s": round(total, 1),
        "preset_estimated_h": round(total / 3600, 1),
        "preset_share_from_same_task": round(sum(k["same_task"] for k in whole.values()) / tasks, 3),
        "preset_by_kind": {
            name: {**kind, "seconds": round(kind["seconds"], 1)} for name, kind in sorted(whole.items())
        },
    }
    print(json.dumps(result, indent=1))
    if args.name:
        write_results(args.name, result)


if __name__ == "__main__":
    main()
