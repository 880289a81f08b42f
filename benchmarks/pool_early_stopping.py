"""What stops a ``+pool`` model's training: its early-stopping scores, epoch by epoch.

``PoolAdversarialFinetuning`` keeps the epoch with the best worst-source accuracy on the study's
validation split (rows no model trains on) among the epochs within ``clean_budget`` of the
parent's clean accuracy on those rows;
an epoch outside the budget scores its clean accuracy - 1 (so a negative score means "outside").
The bench keeps only the kept epoch, so this script rebuilds each study seed's ``+pool`` targets
from a finished study's cache (the same pool, the same seeds: the rebuilt model is the cached
one, which the script checks) and prints every epoch's score.

Run: python benchmarks/pool_early_stopping.py RESULTS_DIR [--config RESULTS_JSON]
(``--config``: the results.json of the run whose targets to rebuild, when several runs share
RESULTS_DIR's cache; default RESULTS_DIR/results.json). Writes nothing; prints one line per target.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gap_art.bench import BenchConfig, build_graph
from gap_art.bench.context import Context
from gap_art.bench.graph import Dependencies
from gap_art.bench.store import Store
from gap_art.bench.target_spec import TargetResult
from gap_art.bench.targets import PrunedSpec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results_dir", type=Path)
    parser.add_argument("--config", type=Path, help="results.json of the run to rebuild")
    args = parser.parse_args()
    stored = json.loads((args.config or args.results_dir / "results.json").read_text())["config"]
    config = BenchConfig.from_dict(stored, files=False)
    store = Store(args.results_dir)
    ctx = Context(config, store)
    print(f"pool_sources {config.pool_sources}, finetune_patience {config.finetune_patience}")
    for task in build_graph(config).tasks.values():
        spec = task.spec
        if not (
            isinstance(spec, PrunedSpec) and spec.settings.hardening == "pool" and spec.seed in config.seeds
        ):
            continue  # the study's own +pool targets, not the replicas' or the bootstraps'
        deps = [store.read_result(d) for d in task.deps]
        cached = store.read_result(task.id)
        if not isinstance(cached, TargetResult) or any(dep is None or dep.failed for dep in deps):
            print(f"seed {spec.seed}: not in the cache of {args.results_dir}")
            continue
        result = spec.compress(Dependencies(task.roles, [dep for dep in deps if dep is not None]), ctx)
        record = result.records[-1]
        same = (record.epochs_run, record.best_epoch) == (
            cached.finetune_epochs_run,
            cached.finetune_best_epoch,
        )
        scores = ", ".join(f"{score:+.3f}" for score in record.validation_accuracy)
        inside = sum(score >= 0 for score in record.validation_accuracy)
        print(
            f"seed {spec.seed}: kept epoch {record.best_epoch} of {record.epochs_run} "
            f"({'as cached' if same else 'NOT as cached'}); epochs within the clean budget: "
            f"{inside}; scores per epoch: {scores}"
        )


if __name__ == "__main__":
    main()
