"""Where one seed of a bench study spends its time (issue 35, item 3): by task kind, from each
task's own timing in the cache, and by function, from cProfile over the whole run.

The task kinds: the dense model, the attackers' own models, the pool's sources, pruning
(fine-tuning included), hardening (``+tat``, ``+gal``, ``+pool``), the replicas an attacker
reruns, ART's trainers, int8, crafting, and scoring (the cells); the functions: training,
fine-tuning, crafting, prediction, forward and backward passes, checkpoint loading and saving,
writing the results. Run it on an idle machine, once before and once after a change, on the
same machine:

    python benchmarks/profile_study.py --preset harden --seed 0 --name profile_harden_seed0
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
from collections import Counter
from dataclasses import replace
from typing import Any

from common import write_results

from gap_art.bench import build_graph, preset, run
from gap_art.bench.seeds import attacker_seed
from gap_art.bench.store import Store
from gap_art.bench.target_spec import TargetSpec

FUNCTIONS = {
    "training (train_model)": ("training.py", "train_model"),
    "fine-tuning (train_to_convergence)": ("training.py", "train_to_convergence"),
    "crafting (craft_examples)": ("transfer.py", "craft_examples"),
    "scoring (evaluate_transfer)": ("transfer.py", "evaluate_transfer"),
    "white-box scoring (evaluate_whitebox)": ("transfer.py", "evaluate_whitebox"),
    "ART predict": ("pytorch.py", "predict"),
    "ART loss_gradient": ("pytorch.py", "loss_gradient"),
    "forward passes (Module._call_impl)": ("module.py", "_call_impl"),
    "backward passes (autograd backward)": ("__init__.py", "backward"),
    "checkpoint loading": ("checkpoint.py", "load_checkpoint"),
    "checkpoint saving": ("checkpoint.py", "save_checkpoint"),
    "examples saved (savez_compressed)": ("_npyio_impl.py", "savez_compressed"),
    "results written (write_outputs)": ("report.py", "write_outputs"),
}
"""Functions whose cumulative time the profile reports, by (file name, function name)."""


def task_kind(task: Any, seed: int) -> str:
    """The kind of work a task does, for the profile by kind."""
    spec = task.spec
    if task.kind == "source":
        if spec.checkpoint is not None or spec.seed == seed:
            return "dense model"
        return "attackers' models" if spec.seed == attacker_seed(seed) else "pool sources"
    if not isinstance(spec, TargetSpec):
        return {"craft": "crafting", "sanity": "sanity checks"}.get(task.kind, task.kind)
    if spec.seed != seed:
        return "replicas and pool members"
    if spec.family == "pruning":
        hardened = getattr(spec, "settings", None) is not None and spec.settings.hardening
        return "hardening" if hardened else "pruning"
    return {"art_defence": "ART defences", "quantization": "int8", "baseline": "dense model"}[spec.family]


def by_kind(config: Any, store: Store, seed: int) -> dict[str, float]:
    """Seconds per task kind, from the cache's task timings and the cells' rows."""
    seconds: Counter[str] = Counter()
    for task in build_graph(config).tasks.values():
        result = store.read_result(task.id)
        if result is not None:
            seconds[task_kind(task, seed)] += result.time_s or 0.0
    seconds["scoring (cells)"] = sum(
        float(r.get("cell_time_s") or 0.0) for r in store.finished_rows().values()
    )
    return dict(seconds.most_common())


def by_function(stats: pstats.Stats) -> dict[str, float]:
    """Cumulative seconds of each of :data:`FUNCTIONS` (0 where never called)."""
    found = dict.fromkeys(FUNCTIONS, 0.0)
    for (path, _, name), (_, _, _, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        for label, (file_name, function) in FUNCTIONS.items():
            if name == function and path.endswith(file_name):
                found[label] = max(found[label], cumulative)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="harden")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="Results folder (default: a temporary one).")
    parser.add_argument("--name", help="Write benchmarks/results/<name>.json.")
    args = parser.parse_args()
    config = replace(preset(args.preset), seeds=[args.seed])
    out = args.out or tempfile.mkdtemp(prefix="gap-art-profile-")
    profiler, start = cProfile.Profile(), time.perf_counter()
    profiler.runcall(run, config, out=out, progress=False)
    wall = time.perf_counter() - start
    stats = pstats.Stats(profiler)
    kinds, functions = by_kind(config, Store(out), args.seed), by_function(stats)
    print(f"{args.preset} preset, seed {args.seed}: {wall:.1f} s wall (under cProfile)\n\nby task kind (s):")
    for kind, seconds in kinds.items():
        print(f"  {kind:32s} {seconds:8.1f}")
    print("\nby function, cumulative (s):")
    for label, seconds in functions.items():
        print(f"  {label:40s} {seconds:8.1f}")
    print("\ntop 25 functions by own time:")
    stats.sort_stats("tottime").print_stats(25)
    if args.name:
        write_results(args.name, {"preset": args.preset, "seed": args.seed, "wall_s": wall,
                                  "by_task_kind_s": kinds, "by_function_s": functions})  # fmt: skip


if __name__ == "__main__":
    main()
