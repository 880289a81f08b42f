"""The study as a graph of independent, cached tasks.

Per seed: train the source; per (seed, target): build the target; per (seed, attack):
craft the examples on the source once; per (seed, target, attack): evaluate (a *cell*).
Each task's id is a hash of everything that determines its output (its settings and the
ids of the tasks it depends on), so a changed setting changes exactly the ids downstream
of it and a finished task is never redone.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from gap_art.bench.config import PRUNING_METHODS, BenchConfig

KINDS = ("source", "target", "craft", "cell")


@dataclass(frozen=True)
class Task:
    """One unit of work: its kind, what determines it, and the tasks it needs first."""

    kind: str
    spec: dict[str, Any] = field(hash=False)
    deps: tuple[str, ...] = ()
    id: str = ""

    @classmethod
    def make(cls, kind: str, spec: dict[str, Any], deps: tuple[Task, ...] = ()) -> Task:
        dep_ids = tuple(d.id for d in deps)
        payload = json.dumps({"kind": kind, "spec": spec, "deps": dep_ids}, sort_keys=True)
        digest = hashlib.sha256(payload.encode()).hexdigest()[:16]
        return cls(kind=kind, spec=spec, deps=dep_ids, id=f"{kind}-{digest}")


@dataclass
class Graph:
    """All tasks of a study, keyed by id, with the cells (the results' rows) in report order."""

    tasks: dict[str, Task]
    cells: list[Task]

    def order(self, task: Task) -> list[Task]:
        """``task`` and everything it depends on, dependencies first, each once."""
        seen: dict[str, Task] = {}

        def visit(current: Task) -> None:
            for dep in current.deps:
                if dep not in seen:
                    visit(self.tasks[dep])
            seen.setdefault(current.id, current)

        visit(task)
        return list(seen.values())


def _data_spec(config: BenchConfig) -> dict[str, Any]:
    return {
        "dataset": config.dataset,
        "n_train": config.n_train,
        "data_seed": config.data_seed,
    }


def _format_ratio(ratio: float) -> str:
    return f"{ratio:g}x"


def build_graph(config: BenchConfig) -> Graph:
    """Every task of the study described by ``config``."""
    tasks: dict[str, Task] = {}
    cells: list[Task] = []

    def add(task: Task) -> Task:
        tasks.setdefault(task.id, task)
        return task

    for seed in config.seeds:
        source = add(
            Task.make(
                "source",
                {
                    **_data_spec(config),
                    "model": config.model,
                    "epochs": config.epochs,
                    "seed": seed,
                },
            )
        )
        targets = _targets(config, seed, source, add)
        crafts = {
            attack: add(
                Task.make(
                    "craft",
                    {
                        "attack": attack,
                        "eps": config.attack_eps,
                        "backend": config.attack_backend,
                        "n_test": config.n_test,
                        "split": config.split,
                        "seed": seed,
                    },
                    (source,),
                )
            )
            for attack in config.attacks
        }
        for target in targets:
            for attack, craft in crafts.items():
                spec = {
                    "target": target.spec["name"],
                    "attack": attack,
                    "seed": seed,
                    "whitebox": attack in config.whitebox_attacks,
                }
                cells.append(add(Task.make("cell", spec, (source, target, craft))))
    return Graph(tasks, cells)


def _targets(config: BenchConfig, seed: int, source: Task, add: Any) -> list[Task]:
    """The dense model, every pruned model, their int8 versions and ART's defences."""
    common = {"seed": seed}
    dense = add(
        Task.make(
            "target",
            {**common, "name": "dense", "family": "baseline", "method": "dense"},
            (source,),
        )
    )
    floats = [dense]
    for method in config.methods:
        for ratio in config.compression:
            spec = {
                **common,
                "name": f"{method}@{_format_ratio(ratio)}",
                "family": "pruning",
                "method": method,
                "requested_compression": float(ratio),
                "finetune_epochs": config.finetune_epochs,
                "n_calibration": config.n_calibration,
            }
            if PRUNING_METHODS[method][0] == "gap":
                spec["gap_eps"] = config.gap_eps
            floats.append(add(Task.make("target", spec, (source,))))
    targets = list(floats)
    if config.int8:
        for parent in floats:
            spec = {
                **common,
                "name": f"{parent.spec['name']}+int8",
                "family": "quantization",
                "method": f"{parent.spec['method']}+int8",
                "parent": parent.spec["name"],
            }
            targets.append(add(Task.make("target", spec, (source, parent))))
    for defence in config.defences:
        spec = {**common, "name": f"art:{defence}", "family": "art_defence", "method": defence}
        if defence == "distillation":  # a student trained from scratch, like the source
            spec["epochs"] = config.epochs
        elif defence in ("madry-pgd", "fbf"):  # adversarial fine-tuning of the source
            spec["epochs"] = config.defence_epochs
            spec["eps"] = config.attack_eps
        targets.append(add(Task.make("target", spec, (source,))))
    return targets
