"""The study as a graph of independent, cached tasks.

Per seed: train the source; per (seed, target): build the target; per (seed, attack, threat
model): craft the examples once on the attacker's model(s); per (seed, target, attack, threat
model, eps): evaluate (a *cell*); per seed, the sanity checks. Each task's id is a hash of
everything that determines its output (its settings, the ids of the tasks it depends on and
a digest of gap-art's own source files), so a changed setting changes exactly the ids
downstream of it, a code change invalidates the cache, and a finished task is never redone.
Pruned targets depend on the primary attack's examples, on which their fine-tuning curve is
measured. Target specs are typed (:mod:`gap_art.bench.targets`).
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gap_art.bench.config import BenchConfig
from gap_art.bench.targets import (
    ArtPreprocessorSpec,
    ArtTrainerSpec,
    DenseSpec,
    Int8Spec,
    PrunedSpec,
    TargetSpec,
    spec_from_dict,
)
from gap_art.defences.art_builtin import ART_DEFENCES, TrainedDefence
from gap_art.defences.methods import parse_method


@functools.lru_cache(maxsize=1)
def source_digest() -> str:
    """A hash of every gap-art source file: cached results from other code are not reused."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def file_digest(path: str | Path) -> str:
    """The SHA-256 of a file: a changed user checkpoint gets new task ids."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()[:16]


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
        payload = json.dumps(
            {"kind": kind, "spec": spec, "deps": dep_ids, "code": source_digest()}, sort_keys=True
        )
        digest = hashlib.sha256(payload.encode()).hexdigest()[:16]
        return cls(kind=kind, spec=spec, deps=dep_ids, id=f"{kind}-{digest}")


@dataclass
class Graph:
    """All tasks of a study, keyed by id; the cells (the results' rows) in report order; and
    the extra tasks whose results go into the report beside the rows (sanity checks)."""

    tasks: dict[str, Task]
    cells: list[Task]
    extras: list[Task] = field(default_factory=list)

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


ATTACKER_SEED_OFFSET = 7919
"""The attacker's own models (``independent``, ``replica``) use seed + this offset: another
initialisation, another data order and another calibration subset than the defender's."""


def primary_attack(config: BenchConfig) -> str:
    """The attack the fine-tuning curves, security curves and summaries use: PGD if studied."""
    return "pgd" if "pgd" in config.attacks else config.attacks[0]


class _Builder:
    """Adds the tasks of one study to a graph, each once."""

    def __init__(self, config: BenchConfig) -> None:
        self.config = config
        self.tasks: dict[str, Task] = {}
        self.cells: list[Task] = []
        self.extras: list[Task] = []

    def add(self, task: Task) -> Task:
        return self.tasks.setdefault(task.id, task)

    def target(self, spec: TargetSpec, deps: tuple[Task, ...]) -> Task:
        return self.add(Task.make("target", spec.to_dict(), deps))

    def source(self, seed: int, attacker: bool = False) -> Task:
        """The defender's dense model (trained with ``seed``, or the user's checkpoint for
        every seed), or with ``attacker`` the attacker's own, always trained."""
        c = self.config
        spec: dict[str, Any] = {**_data_spec(c), "model": c.model}
        if c.source_checkpoint is not None and not attacker:
            spec.update(checkpoint=c.source_checkpoint, checkpoint_sha256=file_digest(c.source_checkpoint))
        else:
            spec.update(epochs=c.epochs, seed=seed)
        return self.add(Task.make("source", spec, ()))

    def craft(self, attack: str, eps: float, seed: int, threat: str, sources: tuple[Task, ...]) -> Task:
        c = self.config
        spec = {
            "attack": attack,
            "eps": eps,
            "backend": c.attack_backend,
            "n_test": c.n_test,
            "split": c.split,
            "seed": seed,
            "threat_model": threat,
        }
        return self.add(Task.make("craft", spec, sources))

    def pruned(self, method: str, ratio: float, seed: int, source: Task, curve: Task) -> list[Task]:
        """One pruned target per GAP budget (one for criteria without an attack)."""
        c = self.config
        parsed = parse_method(method)
        adversarial = parsed.adversarial
        budgets: list[tuple[float, float] | None] = list(c.gap_budgets()) if adversarial else [None]
        tasks = []
        for budget in budgets:
            label = method if len(budgets) == 1 or budget is None else f"{method}[eps={budget[0]:g}]"
            spec = PrunedSpec(
                seed=seed,
                name=f"{label}@{_format_ratio(ratio)}",
                method=method,
                requested_compression=float(ratio),
                finetune_epochs=c.finetune_epochs,
                finetune_patience=c.finetune_patience,
                validation_fraction=c.validation_fraction,
                prune_classifier=c.prune_classifier,
                n_calibration=c.n_calibration,
                gap_eps=budget[0] if budget else None,
                gap_eps_step=budget[1] if budget else None,
                rounds=c.rounds if parsed.iterative else 1,
                harden_eps=c.attack_eps if parsed.hardening else None,
            )
            tasks.append(self.target(spec, (source, curve)))
        return tasks

    def replica(self, pruned: Task, source: Task) -> Task:
        """The target's own method, ratio and settings run on ``source`` with the attacker's
        seed (their calibration subset, tie-breaking and fine-tuning order)."""
        spec = spec_from_dict(pruned.spec)
        return self.target(replace(spec, seed=spec.seed + ATTACKER_SEED_OFFSET), (source,))

    def cell(self, target: Task, craft: Task, whitebox: bool) -> None:
        spec = {
            "target": target.spec["name"],
            "attack": craft.spec["attack"],
            "eps": craft.spec["eps"],
            "threat_model": craft.spec["threat_model"],
            "seed": craft.spec["seed"],
            "whitebox": whitebox,
        }
        self.cells.append(self.add(Task.make("cell", spec, (target, craft))))


def build_graph(config: BenchConfig) -> Graph:
    """Every task of the study described by ``config``."""
    b = _Builder(config)
    eps, primary = config.attack_eps, primary_attack(config)
    for seed in config.seeds:
        source = b.source(seed)
        dense = {a: b.craft(a, eps, seed, "dense", (source,)) for a in config.attacks}
        targets, parents = _targets(b, seed, source, dense[primary])
        if config.sanity_checks:
            spec = {"eps": eps, "attacks": list(config.attacks), "backend": config.attack_backend,
                    "n_test": config.n_test, "split": config.split, "seed": seed}  # fmt: skip
            b.extras.append(b.add(Task.make("sanity", spec, (source,))))
        attacker = b.source(seed + ATTACKER_SEED_OFFSET, attacker=True)
        for target in targets:
            for attack in config.attacks:
                b.cell(target, dense[attack], attack in config.whitebox_attacks)
                for threat in config.threat_models:
                    if threat == "dense":
                        continue
                    sources = _attacker_sources(b, threat, parents.get(target.id), source, attacker)
                    if sources:
                        b.cell(target, b.craft(attack, eps, seed, threat, sources), False)
            for multiplier in (m for m in config.curve_eps if m != 1.0):
                for attack in config.attacks:  # a security curve per attack
                    curve = b.craft(attack, multiplier * eps, seed, "dense", (source,))
                    b.cell(target, curve, attack in config.whitebox_attacks)
    return Graph(b.tasks, b.cells, b.extras)


def _attacker_sources(
    b: _Builder, threat: str, pruned: Task | None, source: Task, attacker: Task
) -> tuple[Task, ...]:
    """The models an attacker crafts on, for one target (``()``: not applicable to it).

    ``independent``: the attacker's own dense model. ``replica``: the target's method (a
    pruning method at its ratio, or ART's training for an ART trained defence) run on *our*
    dense model (the attacker holds it) with the attacker's seed and calibration subset.
    ``replica-independent``: the same run on the attacker's own dense model. ``ensemble``: the
    logit average of our dense model, the independent one and the replica, the same recipe for
    every target that has a replica.
    """
    if threat == "independent":
        return (attacker,)
    if pruned is None:  # replicas rerun a method on M; this target (dense, a preprocessor) has none
        return ()
    if threat == "replica-independent":
        return (b.replica(pruned, attacker),)
    replica = b.replica(pruned, source)
    if threat == "replica":
        return (replica,)
    return (source, attacker, replica)


def _targets(b: _Builder, seed: int, source: Task, curve: Task) -> tuple[list[Task], dict[str, Task]]:
    """The dense model, every pruned model, their int8 versions and ART's defences.

    Also returns, for each target whose method an attacker can rerun on M (a pruned model and
    its int8 version, an ART trained defence), the target that method built: what a replica
    copies.
    """
    config = b.config
    dense = b.target(DenseSpec(seed=seed, name="dense", method="dense"), (source,))
    floats = [dense]
    parents: dict[str, Task] = {}
    for method in config.methods:
        for ratio in config.compression:
            for pruned in b.pruned(method, ratio, seed, source, curve):
                parents[pruned.id] = pruned
                floats.append(pruned)
    targets = list(floats)
    if config.int8:
        for parent in floats:
            name, method = parent.spec["name"], parent.spec["method"]
            spec = Int8Spec(seed=seed, name=f"{name}+int8", method=f"{method}+int8", parent=name)
            quantized = b.target(spec, (source, parent))
            if parent.id in parents:
                parents[quantized.id] = parent
            targets.append(quantized)
    for defence in config.defences:
        target = b.target(_art_defence_spec(config, defence, seed), (source,))
        if issubclass(ART_DEFENCES.get(defence), TrainedDefence):
            parents[target.id] = target  # an attacker can rerun ART's training on M too
        targets.append(target)
    return targets, parents


def _art_defence_spec(config: BenchConfig, name: str, seed: int) -> TargetSpec:
    """A preprocessor wraps the source; a trainer trains from scratch for the source's epochs
    (distillation) or fine-tunes the source for ``defence_epochs``, at eps if adversarial."""
    defence = ART_DEFENCES.get(name)
    if not issubclass(defence, TrainedDefence):
        return ArtPreprocessorSpec(seed=seed, name=f"art:{name}", method=name)
    return ArtTrainerSpec(
        seed=seed,
        name=f"art:{name}",
        method=name,
        epochs=config.epochs if defence.from_scratch else config.defence_epochs,
        eps=config.attack_eps if defence.adversarial else None,
        patience=config.finetune_patience if defence.adversarial else None,
        validation_fraction=config.validation_fraction,
    )
