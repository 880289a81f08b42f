"""The study's task kinds besides the targets (:mod:`gap_art.bench.targets`): train or load
the source, craft one attack on the attacker's model(s), evaluate one (target, crafted set)
*cell*, and run the sanity checks. Each is a typed spec that owns how it runs and how it
names itself."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from art.estimators.classification import PyTorchClassifier

from gap_art.bench.context import Context
from gap_art.bench.graph import Dependencies, Task, TaskSpec
from gap_art.bench.rows import ROW_FIELDS, Row, as_row, pack_correct
from gap_art.bench.target_spec import (
    TargetResult,
    TargetSpec,
    craft_rows,
    load_target,
    size_fields,
    whitebox_attack,
)
from gap_art.bench.task_results import (
    CellResult,
    CraftResult,
    Failure,
    ModelResult,
    SanityResult,
    SourceResult,
    TaskResult,
)
from gap_art.checkpoint import load_model
from gap_art.classifiers import pixel_space
from gap_art.data.splits import VALIDATION
from gap_art.evaluation import craft_examples, evaluate_transfer, evaluate_whitebox
from gap_art.evaluation.metrics import wilson_interval
from gap_art.evaluation.sanity import run_sanity_checks
from gap_art.models.registry import model_recipe
from gap_art.runtime import atomic_write, seeded_subset
from gap_art.settings import AttackSpec
from gap_art.training import RECIPES, train_model


@dataclass(frozen=True)
class SourceSpec(TaskSpec):
    """A dense model: trained on ``dataset`` (a built-in name or the user's data path;
    ``n_train`` examples drawn with ``data_seed``)
    for ``epochs`` with ``seed``, or the user's ``checkpoint`` (its SHA-256 in the id)."""

    kind = "source"
    records_failures = False
    dataset: str
    n_train: int | None
    data_seed: int
    arch: str
    epochs: int | None = None
    seed: int | None = None
    checkpoint: str | None = None
    checkpoint_sha256: str | None = None

    def describe(self) -> str:
        if self.checkpoint is not None:
            return f"load {self.arch} from {self.checkpoint}"
        return f"train {self.arch} (seed {self.seed})"

    def run(self, task: Task, deps: Dependencies, ctx: Context) -> SourceResult:
        info = ctx.data.info
        if self.checkpoint is not None:  # the user's trained model
            model, _ = load_model(self.checkpoint, info, self.arch, ctx.arch_kwargs(self.arch))
            saved = ctx.save_model(task.id, model, self.arch)
            return SourceResult(checkpoint=saved, time_s=0.0, size=size_fields(model, False))
        assert self.seed is not None and self.epochs is not None
        torch.manual_seed(self.seed)
        model = ctx.new_model(self.arch)
        start = time.perf_counter()
        recipe = RECIPES[model_recipe(self.arch)]
        train_model(
            pixel_space(model, info), ctx.data.train, self.epochs, recipe, self.seed, ctx.device, False
        )
        elapsed = time.perf_counter() - start
        saved = ctx.save_model(task.id, model, self.arch)
        return SourceResult(checkpoint=saved, time_s=elapsed, size=size_fields(model, False))


@dataclass(frozen=True)
class CraftSpec(TaskSpec):
    """One attack crafted once on the attacker's model(s) (the task's ``model`` dependencies;
    several are attacked as their logit average) on the seed's test sample."""

    kind = "craft"
    reads: ClassVar[tuple[str, ...]] = ("arch", "arch_kwargs", "n_test", "split", "data_seed")
    seed: int
    attack: AttackSpec
    threat_model: str
    n_test: int | None
    split: str

    def describe(self) -> str:
        rows = " on validation rows" if self.split == VALIDATION else ""
        return f"craft {self.attack.attack} from {self.threat_model}{rows} (seed {self.seed})"

    def run(self, task: Task, deps: Dependencies, ctx: Context) -> CraftResult:
        checkpoints = [model.checkpoint for model in deps.all("model", ModelResult)]
        source = ctx.crafting_classifier(checkpoints)
        x, y = craft_rows(ctx, self.split, self.seed)
        start = time.perf_counter()
        x_adv = craft_examples(source, x, y, self.attack)
        name = f"{task.id}.npz"
        atomic_write(ctx.store.cache / name, lambda tmp: np.savez_compressed(tmp, x_adv=x_adv))
        return CraftResult(
            examples=name,
            sources=tuple(checkpoints),
            attack=self.attack,
            time_s=time.perf_counter() - start,
            n=len(x),
        )


@dataclass(frozen=True)
class ValidationCraftSpec(CraftSpec):
    """An attack crafted on the seed's dense model over the study's validation rows, which
    model selection reads: part of the data, so the test sample's settings do not key it."""

    reads: ClassVar[tuple[str, ...]] = ("arch", "arch_kwargs")
    n_test: None = None
    split: str = VALIDATION


@dataclass(frozen=True)
class CellSpec(TaskSpec):
    """One results row: the ``target`` dependency on the examples of the ``craft``
    dependency, and, with ``whitebox``, the same attack run on the target itself; with
    ``autoattack_n``, AutoAttack too (on the attack's backend), white-box on a seeded subsample
    of that many of the examples."""

    kind = "cell"
    reads = ("arch", "arch_kwargs", "n_test", "split", "data_seed")
    announced = False
    seed: int
    target: str
    attack: AttackSpec
    threat_model: str
    whitebox: bool
    autoattack_n: int = 0

    def describe(self) -> str:
        return f"evaluate {self.target} / {self.attack.attack} / {self.threat_model}"

    def row(
        self, cell_id: str, target: TargetSpec, target_result: TaskResult, cell_result: TaskResult
    ) -> Row:
        """The results row: the target's identity and cost, then this cell's metrics (or the
        error that left it without them)."""
        identity = {
            "cell_id": cell_id,
            "target": target.name,
            "family": target.family,
            "method": target.method,
            "requested_compression": target.requested_compression,
            "seed": self.seed,
            "attack": self.attack.attack,
            "eps": self.attack.eps,
            "threat_model": self.threat_model,
        }
        cost = target_result.row_columns() if isinstance(target_result, TargetResult) else {}
        if isinstance(cell_result, CellResult):
            metrics = {k: v for k, v in cell_result.columns.items() if k not in ("target", "attack", "seed")}
        else:
            metrics = {"error": cell_result.error if isinstance(cell_result, Failure) else None}
        metrics["environment"] = cell_result.environment
        return as_row({**dict.fromkeys(ROW_FIELDS), **identity, **cost, **metrics})

    def run(self, task: Task, deps: Dependencies, ctx: Context) -> CellResult:
        start = time.perf_counter()
        target_result, craft = deps.one("target", TargetResult), deps.one("craft", CraftResult)
        source = ctx.crafting_classifier(list(craft.sources))
        target = load_target(task.dep("target"), target_result, ctx)
        x, y = ctx.evaluation_set(self.seed)
        (result,) = evaluate_transfer(
            source,
            {self.target: target},
            x,
            y,
            self.attack.attack,
            x_adv=ctx.examples(craft),
            progress=False,
            seed=self.attack.seed,
            source_name=self.threat_model,
            logits=ctx.logits,
        )
        row = result.to_dict()
        row["transfer_correct"] = pack_correct(result.per_example["transfer"])  # worst case per example
        row["clean_correct"] = pack_correct(result.per_example["clean"])  # the paired leak test
        row.update(self._whitebox(target, x, y, ctx))
        row.update(self._autoattack(target, x, y))
        elapsed = time.perf_counter() - start
        row["cell_time_s"] = elapsed  # the row's time_s is its target's build
        return CellResult(columns=as_row(row), time_s=elapsed)

    def _autoattack(self, target: PyTorchClassifier, x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
        """AutoAttack on the study's attack backend run white-box (as :meth:`_whitebox` attacks)
        on a seeded subsample of ``autoattack_n`` examples: its accuracy with a Wilson interval;
        nothing where not asked."""
        if not self.autoattack_n:
            return {}
        keep = seeded_subset(len(x), self.autoattack_n, self.seed)
        attacked, _ = whitebox_attack(target, self.attack)
        a = self.attack
        autoattack = AttackSpec(
            "autoattack", a.backend, a.eps, a.eps_step, batch_size=a.batch_size, seed=a.seed
        )
        x_adv = craft_examples(attacked, x[keep], y[keep], autoattack)
        correct = target.predict(x_adv, batch_size=1024).argmax(1) == y[keep]
        low, high = wilson_interval(int(correct.sum()), len(correct))
        return {
            "autoattack_accuracy": float(correct.mean()),
            "autoattack_accuracy_ci_low": low,
            "autoattack_accuracy_ci_high": high,
            "autoattack_n": len(correct),
        }

    def _whitebox(
        self, target: PyTorchClassifier, x: np.ndarray, y: np.ndarray, ctx: Context
    ) -> dict[str, Any]:
        """White-box accuracy: attacked through its own gradients, or, for an int8 target,
        through its float parent (``surrogate``) and transferred; ``None`` where not asked."""
        if not self.whitebox:
            return {"whitebox_accuracy": None, "whitebox_mode": None}
        attacked, attack = whitebox_attack(target, self.attack)
        x_adv = ctx.whitebox_examples(  # an int8 target reuses the examples crafted on its float parent
            (id(attacked), attack), lambda: craft_examples(attacked, x, y, attack)
        )
        name, seed = attack.attack, attack.seed
        if attacked is target:
            result = evaluate_whitebox(
                target, x, y, name, progress=False, seed=seed, x_adv=x_adv, logits=ctx.logits
            )
            accuracy, mode = result.adversarial_accuracy, "direct"
            low, high = result.intervals["adversarial_accuracy"]
            correct = result.per_example["adversarial"]
        else:
            (transfer,) = evaluate_transfer(
                attacked, {"int8": target}, x, y, name, x_adv=x_adv, progress=False, logits=ctx.logits
            )
            accuracy, mode = transfer.transfer_accuracy, "surrogate"
            low, high = transfer.intervals["transfer_accuracy"]
            correct = transfer.per_example["transfer"]
        return {
            "whitebox_accuracy": accuracy,
            "whitebox_accuracy_ci_low": low,
            "whitebox_accuracy_ci_high": high,
            "whitebox_mode": f"{mode} ({attack.backend})",
            "whitebox_correct": pack_correct(correct),  # the paired masking check
        }


@dataclass(frozen=True)
class SanitySpec(TaskSpec):
    """The attack sanity checks on one seed's ``source``."""

    kind = "sanity"
    reads = ("arch", "arch_kwargs", "n_test", "split", "data_seed")
    announced = False
    eps: float
    attacks: tuple[str, ...]
    backend: str
    n_test: int | None
    split: str
    seed: int

    def describe(self) -> str:
        return f"sanity checks (seed {self.seed})"

    def run(self, task: Task, deps: Dependencies, ctx: Context) -> SanityResult:
        source = ctx.classifier(deps.one("source", SourceResult).checkpoint)
        x, y = ctx.evaluation_set(self.seed)
        checks = run_sanity_checks(
            source, x, y, self.eps, list(self.attacks), backend=self.backend, seed=self.seed
        )
        return SanityResult(seed=self.seed, checks=tuple(checks))
