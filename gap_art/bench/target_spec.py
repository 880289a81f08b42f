"""What every target is: its spec (:class:`TargetSpec`, what determines it, hashed into its
task id; it owns ``build`` and ``load``), its result (:class:`TargetResult`, what the cache
keeps and how to rebuild the classifier in any process) and the registry of target kinds
(``@target_kind``; the kinds are in :mod:`gap_art.bench.targets`)."""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, is_dataclass, replace
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
from art.estimators.classification import PyTorchClassifier
from typing_extensions import dataclass_transform

from gap_art.bench.context import Context
from gap_art.bench.graph import Dependencies, Task, TaskSpec
from gap_art.bench.rows import TARGET_FIELDS, Row, as_row, pack_correct
from gap_art.bench.task_results import CraftResult, ModelResult, ModelSize, SourceCurve
from gap_art.classifiers import is_gradient_free
from gap_art.data.splits import VALIDATION
from gap_art.evaluation import craft_examples
from gap_art.evaluation.metrics import class_recall
from gap_art.jsonable import from_dict
from gap_art.pruning import layer_sparsity, measure_compression, prunable_parameters
from gap_art.pruning.structured import ChannelReport
from gap_art.quantization import model_size
from gap_art.settings import AttackSpec

S = TypeVar("S", bound="TargetSpec")


@dataclass(frozen=True)
class ValidationPoint:
    """The model a target kept, scored on the study's validation rows under the primary attack
    crafted on the dense model: clean and transfer accuracy, per example too, its clean recall
    per class, and which examples the same attack run white-box on it leaves correct. What
    selection within a clean-accuracy budget and the collapse, leak and gradient-masking flags
    read."""

    clean_accuracy: float
    transfer_accuracy: float
    class_recall: tuple[float | None, ...]
    class_support: tuple[int, ...]
    attack: str
    clean_correct: str
    transfer_correct: str
    whitebox_correct: str


@dataclass(frozen=True, kw_only=True)
class TargetResult(ModelResult):
    """A finished target: the ``spec`` that rebuilds it in any process, how to load it
    (``checkpoint``, or ``parent_checkpoint`` for an int8 model), what its method recorded, and
    its :class:`ValidationPoint`. ``validation_curve``: ``[epoch, clean, transfer]`` on the
    validation rows before and after each fine-tuning epoch, with ``white-box`` appended when
    the study records training curves (:mod:`gap_art.bench.training_curves`); then
    ``validation_curve_sources`` holds transfer from more sources at each of those points and
    ``epoch_checkpoints`` each epoch's model."""

    result_kind = "target"
    spec: TargetSpec
    parent_checkpoint: str | None = None
    excluded_layers: tuple[str, ...] | None = None
    finetune_epochs_run: int | None = None
    finetune_best_epoch: int | None = None
    gap_eps: float | None = None
    gap_eps_step: float | None = None
    gap_steps: int | None = None
    validation_curve: tuple[tuple[float, ...], ...] | None = None
    validation_curve_sources: tuple[SourceCurve, ...] | None = None
    epoch_checkpoints: tuple[str, ...] | None = None
    validation: ValidationPoint | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "spec": self.spec.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TargetResult:
        return from_dict(cls, {**data, "spec": target_from_dict(data["spec"])})

    def row_columns(self) -> Row:
        """What a results row takes from its target (:data:`~gap_art.bench.rows.TARGET_FIELDS`;
        a field the target does not have is left out)."""
        size = {} if self.size is None else asdict(self.size)
        point = {} if self.validation is None else asdict(self.validation)
        flat = {
            **size,
            **{f"validation_{key}": value for key, value in point.items()},
            **{key: getattr(self, key) for key in TARGET_FIELDS if hasattr(self, key)},
        }
        return as_row({key: _json(flat[key]) for key in TARGET_FIELDS if flat.get(key) is not None})


def _json(value: Any) -> Any:
    """A column as results.json holds it: tuples as lists, dataclasses as dicts."""
    if is_dataclass(value) and not isinstance(value, type):
        return {key: _json(item) for key, item in asdict(value).items()}
    return [_json(item) for item in value] if isinstance(value, tuple) else value


@dataclass(frozen=True)
class TargetSpec(TaskSpec):
    """What determines a target. ``target_kind`` picks its class; ``family`` is the row
    column reports group by."""

    kind: ClassVar[str] = "target"
    reads: ClassVar[tuple[str, ...]] = ("arch", "arch_kwargs", "validation_fraction", "n_calibration")
    target_kind: ClassVar[str] = ""
    family: ClassVar[str] = ""
    selectable: ClassVar[bool] = True
    """Scored on the validation rows (its ``validation`` dependency, a validation craft): a
    candidate of the clean-accuracy budgets."""
    seed: int
    name: str
    method: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.target_kind, "family": self.family, **asdict(self)}

    @property
    def requested_compression(self) -> float:
        """The compression asked for (1: not compressed)."""
        return 1.0

    def replica(self, seed: int) -> TargetSpec:
        """The same target built with another seed (an attacker rerunning the method)."""
        return replace(self, seed=seed)

    def describe(self) -> str:
        return f"build {self.name} (seed {self.seed})"

    def run(self, task: Task, deps: Dependencies, ctx: Context) -> TargetResult:
        start = time.perf_counter()
        result = self.build(task.id, deps, ctx)
        if result.time_s is None:
            result = replace(result, time_s=time.perf_counter() - start)
        validation = deps.get("validation", CraftResult)
        if self.selectable and validation is not None:  # the validation examples: the model kept, on them
            result = replace(result, validation=self._validation_point(task.id, result, validation, ctx))
        return result

    def _validation_point(
        self, task_id: str, result: TargetResult, craft: CraftResult, ctx: Context
    ) -> ValidationPoint:
        """The :class:`ValidationPoint` of the model kept."""
        x, y = ctx.validation_set()
        target = load_target(task_id, result, ctx)
        attacked, attack = whitebox_attack(target, craft.attack)
        x_whitebox = craft_examples(attacked, x, y, attack)
        rows, labels = np.concatenate([x, ctx.examples(craft), x_whitebox]), np.concatenate([y, y, y])
        correct = target.predict(rows, batch_size=1024).argmax(1) == labels
        clean, transfer, whitebox = np.split(correct, 3)
        nb_classes = ctx.data.info.nb_classes
        return ValidationPoint(
            clean_accuracy=float(clean.mean()),
            transfer_accuracy=float(transfer.mean()),
            class_recall=tuple(class_recall(clean, y, nb_classes)),
            class_support=tuple(np.bincount(y, minlength=nb_classes).tolist()),
            attack=craft.attack.attack,
            clean_correct=pack_correct(clean),
            transfer_correct=pack_correct(transfer),
            whitebox_correct=pack_correct(whitebox),
        )

    @abstractmethod
    def build(self, task_id: str, deps: Dependencies, ctx: Context) -> TargetResult:
        """Make the target from its dependencies' results (``source``: the dense model it
        starts from)."""

    def load(self, result: TargetResult, ctx: Context) -> PyTorchClassifier:
        """The target's classifier from its result."""
        return ctx.classifier(result.checkpoint)


def whitebox_attack(target: PyTorchClassifier, attack: AttackSpec) -> tuple[PyTorchClassifier, AttackSpec]:
    """What a white-box ``attack`` on ``target`` crafts on: the target itself, or, for an int8
    target, its float parent (``surrogate``), whose examples then transfer; on ART's backend
    where the target's preprocessing is ART's numpy code, differentiable only through ART's own
    estimates (BPDA)."""
    attacked = target.surrogate if is_gradient_free(target) else target
    backend = attack.backend if attacked.all_framework_preprocessing else "art"
    return attacked, replace(attack, backend=backend)


def craft_rows(ctx: Context, split: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The rows a craft of study seed ``seed`` attacks: the study's validation rows, or the
    seed's test sample."""
    return ctx.validation_set() if split == VALIDATION else ctx.evaluation_set(seed)


TARGET_KINDS: dict[str, type[TargetSpec]] = {}


@dataclass_transform(frozen_default=True)
def target_kind(kind: str, family: str) -> Callable[[type[S]], type[S]]:
    """Declare and register a frozen target spec of ``kind`` (reported under ``family``)."""

    def declare(cls: type[S]) -> type[S]:
        cls.target_kind, cls.family = kind, family
        TARGET_KINDS[kind] = cls
        return dataclass(frozen=True)(cls)

    return declare


def target_from_dict(data: Mapping[str, Any]) -> TargetSpec:
    """The typed spec of a target's ``to_dict`` form."""
    return from_dict(TARGET_KINDS[data["kind"]], data)


def load_target(task_id: str, result: TargetResult, ctx: Context) -> PyTorchClassifier:
    """The classifier of a finished target task, built once per process."""
    cached = ctx.cached_target(task_id)
    if cached is None:  # rebuilt as its own task would, reading what that task's kind reads
        spec = result.spec
        cached = spec.load(result, ctx.reading(spec.reads))
        ctx.keep_target(task_id, cached)
    return cached


def size_fields(
    model: torch.nn.Module, int8: bool, prune_classifier: bool = False, channels: ChannelReport | None = None
) -> ModelSize:
    """Achieved compression (over the prunable weights) and storage of a model (float32 or
    int8, dense or bitmap-sparse), and the sparsity of each Conv/Linear weight; for a model
    channel pruning made smaller (``channels``), its compression and multiply-adds."""
    size = model_size(model)
    report = measure_compression(model, prunable_parameters(model, prune_classifier=prune_classifier))
    sparse = size.sparse_int8_bytes if int8 else size.sparse_float32_bytes
    dense = size.int8_bytes if int8 else size.float32_bytes
    encoding = ("int8" if int8 else "float32") + ("+bitmap" if sparse < dense else "")
    return ModelSize(
        compression=report.compression if channels is None else channels.compression,
        sparsity=report.sparsity,
        size_bytes=min(sparse, dense),
        size_encoding=encoding,
        float32_bytes=size.float32_bytes,
        layer_sparsity=layer_sparsity(model, prunable_parameters(model, prune_classifier=True)),
        macs_before=None if channels is None else channels.macs_before,
        macs_after=None if channels is None else channels.macs_after,
    )
