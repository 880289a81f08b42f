"""The targets a study attacks, one kind per family: dense, pruned, int8, ART preprocessor and
ART trainer. Each kind is a typed spec (what determines the target, hashed into its task
id) that owns ``build`` (make it and return its metadata) and ``load`` (rebuild its
classifier from that metadata in any process); ``@target_kind`` registers it, once."""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
from art.estimators.classification import PyTorchClassifier
from typing_extensions import dataclass_transform

from gap_art.bench.context import Context, Meta
from gap_art.bench.graph import Dependencies, Task, TaskSpec
from gap_art.bench.rows import pack_correct
from gap_art.data.splits import VALIDATION
from gap_art.defences import Int8Quantization
from gap_art.defences.art_builtin import PreprocessorDefence, TrainedDefence, TrainingData
from gap_art.defences.art_builtin import get as get_art_defence
from gap_art.defences.methods import Compressed, apply_method, needs_attack
from gap_art.evaluation.metrics import class_recall
from gap_art.pruning import layer_sparsity, measure_compression, prunable_parameters
from gap_art.quantization import model_size
from gap_art.settings import FinetuneSpec, MethodSpec, from_dict

S = TypeVar("S", bound="TargetSpec")


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

    def run(self, task: Task, deps: Dependencies, ctx: Context) -> Meta:
        start = time.perf_counter()
        meta = self.build(task.id, deps, ctx)
        meta.setdefault("time_s", time.perf_counter() - start)
        meta["spec"] = self.to_dict()  # how to load it again, in any process
        validation = deps.get("validation")
        if self.selectable and validation is not None:  # the validation examples: the model kept, on them
            meta.update(self._validation_point(task.id, meta, validation, ctx))
        return meta

    def _validation_point(self, task_id: str, meta: Meta, craft: Meta, ctx: Context) -> Meta:
        """Clean and transfer accuracy of the model kept on the validation rows (the primary
        attack crafted on the dense model), per example too, and its clean recall per class:
        what selection within a clean-accuracy budget and the collapse and leak flags read."""
        x, y = ctx.validation_set()
        both, labels = np.concatenate([x, ctx.examples(craft)]), np.concatenate([y, y])
        correct = load_target(task_id, meta, ctx).predict(both, batch_size=1024).argmax(1) == labels
        clean, transfer, nb_classes = correct[: len(x)], correct[len(x) :], ctx.data.info.nb_classes
        return {
            "validation_clean_accuracy": float(clean.mean()),
            "validation_transfer_accuracy": float(transfer.mean()),
            "validation_class_recall": class_recall(clean, y, nb_classes),
            "validation_class_support": np.bincount(y, minlength=nb_classes).tolist(),
            "validation_attack": craft.get("attack"),
            "validation_clean_correct": pack_correct(clean),
            "validation_transfer_correct": pack_correct(transfer),
        }

    @abstractmethod
    def build(self, task_id: str, deps: Dependencies, ctx: Context) -> Meta:
        """Make the target from its dependencies' metadata (``source``: the dense model it
        starts from)."""

    def load(self, meta: Meta, ctx: Context) -> PyTorchClassifier:
        """The target's classifier from its metadata."""
        return ctx.classifier(meta["checkpoint"])


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


def target_from_dict(data: dict[str, Any]) -> TargetSpec:
    """The typed spec of a target's ``to_dict`` form."""
    return from_dict(TARGET_KINDS[data["kind"]], data)


def load_target(task_id: str, meta: Meta, ctx: Context) -> PyTorchClassifier:
    """The classifier of a finished target task, built once per process."""
    cached = ctx.cached_target(task_id)
    if cached is None:  # rebuilt as its own task would, reading what that task's kind reads
        spec = target_from_dict(meta["spec"])
        cached = spec.load(meta, ctx.reading(spec.reads))
        ctx.keep_target(task_id, cached)
    return cached


def size_fields(model: torch.nn.Module, int8: bool, prune_classifier: bool = False) -> Meta:
    """Achieved compression (over the prunable weights) and storage of a model (float32 or
    int8, dense or bitmap-sparse), and the sparsity of each Conv/Linear weight."""
    size = model_size(model)
    report = measure_compression(model, prunable_parameters(model, prune_classifier=prune_classifier))
    sparse = size.sparse_int8_bytes if int8 else size.sparse_float32_bytes
    dense = size.int8_bytes if int8 else size.float32_bytes
    encoding = ("int8" if int8 else "float32") + ("+bitmap" if sparse < dense else "")
    return {
        "compression": report.compression,
        "sparsity": report.sparsity,
        "size_bytes": min(sparse, dense),
        "size_encoding": encoding,
        "float32_bytes": size.float32_bytes,
        "layer_sparsity": layer_sparsity(model, prunable_parameters(model, prune_classifier=True)),
    }


INHERITED = (
    "finetune_epochs_run",
    "finetune_best_epoch",
    "excluded_layers",
    "gap_eps",
    "gap_eps_step",
    "gap_steps",
)
"""What an int8 target reports of the float target it quantizes."""


@target_kind("dense", "baseline")
class DenseSpec(TargetSpec):
    """The source model, unchanged: the reference every other target is compared with."""

    def build(self, task_id: str, deps: Dependencies, ctx: Context) -> Meta:
        return {key: value for key, value in deps.one("source").items() if key != "traceback"}


@target_kind("pruned", "pruning")
class PrunedSpec(TargetSpec):
    """A method (see :mod:`gap_art.defences.methods`) applied to the source as ``settings``
    say: its criterion at one ratio, fine-tuned (to convergence with a patience), hardened
    for ``+tat``/``+gal``/``+pool``. With a ``validation`` dependency (a craft on the
    validation rows), the fine-tuning curve is recorded on the validation rows, never on test
    examples: ``[epoch, clean accuracy, transfer accuracy]`` before and after each epoch. Its
    ``pool`` dependencies are the static sources a ``+pool`` hardening trains against beside
    the parent (the defender's own replicas, independent and robust models)."""

    settings: MethodSpec = field(default_factory=MethodSpec)

    @property
    def requested_compression(self) -> float:
        return float(self.settings.compression)

    def replica(self, seed: int) -> PrunedSpec:
        """The same method run with another seed (``settings`` follow)."""
        return replace(self, seed=seed, settings=replace(self.settings, seed=seed))

    def build(self, task_id: str, deps: Dependencies, ctx: Context) -> Meta:
        curve: list[list[float]] = []
        validation = deps.get("validation")
        monitor = None if validation is None else _curve_recorder(ctx, ctx.examples(validation), curve)
        result = self.compress(deps, ctx, monitor)
        model = result.classifier.model
        meta = {
            "checkpoint": ctx.save_model(task_id, model),
            **size_fields(model, False, self.settings.prune_classifier),
            "excluded_layers": result.excluded_layers,
            "finetune_epochs_run": sum(record.epochs_run for record in result.records),
            "finetune_best_epoch": result.records[-1].best_epoch,
        }
        if needs_attack(self.settings):
            attack = self.settings.calibration_attack
            meta.update(gap_eps=attack.eps, gap_eps_step=attack.eps_step, gap_steps=attack.steps)
        if curve:
            meta["validation_curve"] = curve
        return meta

    def compress(
        self,
        deps: Dependencies,
        ctx: Context,
        monitor: Callable[[int, PyTorchClassifier], None] | None = None,
    ) -> Compressed:
        """Run the method on the parent (``source``), against its ``pool``, with the seed's
        calibration rows: the target's model and what its fine-tuning did
        (``benchmarks/pool_early_stopping.py`` reruns it from the cache)."""
        pool = [ctx.classifier(meta["checkpoint"]) for meta in deps.all("pool")]
        x_train, y_train = ctx.data.numpy("train")
        return apply_method(
            self.settings,
            ctx.classifier(deps.one("source")["checkpoint"]),
            *ctx.calibration_set(self.seed),
            x_train,
            y_train,
            finetune_monitor=monitor,
            extra_sources=pool,
            validation_data=ctx.validation_set(),
        )


def _curve_recorder(
    ctx: Context, x_adv: np.ndarray, curve: list[list[float]]
) -> Callable[[int, PyTorchClassifier], None]:
    x, y = ctx.validation_set()
    both, labels = np.concatenate([x, x_adv]), np.concatenate([y, y])

    def record(epoch: int, pruned: PyTorchClassifier) -> None:
        correct = pruned.predict(both, batch_size=1024).argmax(1) == labels
        curve.append([epoch, float(correct[: len(x)].mean()), float(correct[len(x) :].mean())])

    return record


def quantize(classifier: PyTorchClassifier, seed: int, ctx: Context) -> PyTorchClassifier:
    """The int8 version of a float classifier, calibrated on the seed's calibration set."""
    x_cal, _ = ctx.calibration_set(seed)
    return Int8Quantization(classifier, nb_calibration=None, seed=seed)(x_cal)


@target_kind("int8", "quantization")
class Int8Spec(TargetSpec):
    """The int8 version of another target (``parent``, a float target's name; the task's
    ``parent`` dependency). int8 models are rebuilt in each process from the parent's
    checkpoint (quantizing is fast and deterministic)."""

    selectable = False
    parent: str = ""
    prune_classifier: bool = False

    def build(self, task_id: str, deps: Dependencies, ctx: Context) -> Meta:
        parent = deps.one("parent")
        float_classifier = ctx.classifier(parent["checkpoint"])
        ctx.keep_target(task_id, quantize(float_classifier, self.seed, ctx))
        inherited = {key: parent[key] for key in INHERITED if key in parent}
        return {
            "parent_checkpoint": parent["checkpoint"],
            **size_fields(float_classifier.model, True, self.prune_classifier),
            **inherited,
        }

    def load(self, meta: Meta, ctx: Context) -> PyTorchClassifier:
        return quantize(ctx.classifier(meta["parent_checkpoint"]), self.seed, ctx)


@target_kind("art-preprocessor", "art_defence")
class ArtPreprocessorSpec(TargetSpec):
    """The source behind one of ART's input transformations (``method`` names it)."""

    def build(self, task_id: str, deps: Dependencies, ctx: Context) -> Meta:
        source = deps.one("source")
        meta = {"checkpoint": source["checkpoint"], "preprocessor": self.method}
        keys = ("compression", "sparsity", "size_bytes", "size_encoding", "layer_sparsity")
        meta.update({k: source[k] for k in keys})
        return meta

    def load(self, meta: Meta, ctx: Context) -> PyTorchClassifier:
        defence = get_art_defence(self.method)
        assert isinstance(defence, PreprocessorDefence)
        return defence.apply(ctx.classifier(meta["checkpoint"]))


@target_kind("art-trainer", "art_defence")
class ArtTrainerSpec(TargetSpec):
    """A model trained by one of ART's trainers (``method``), from the source or from
    scratch, as ``training`` says (epochs; with a patience, to convergence), at ``eps``
    when adversarial."""

    training: FinetuneSpec = field(default_factory=FinetuneSpec)
    eps: float | None = None

    def replica(self, seed: int) -> ArtTrainerSpec:
        """ART's training rerun with another seed."""
        return replace(self, seed=seed, training=replace(self.training, seed=seed))

    def build(self, task_id: str, deps: Dependencies, ctx: Context) -> Meta:
        defence = get_art_defence(self.method)
        assert isinstance(defence, TrainedDefence)
        torch.manual_seed(self.seed)
        student = ctx.new_model()
        x, y = ctx.data.numpy("train")
        data = TrainingData(x, y, student, self.training, self.eps or 0.0, ctx.validation_set())
        model = defence.train(ctx.classifier(deps.one("source")["checkpoint"]), data)
        meta = {"checkpoint": ctx.save_model(task_id, model), **size_fields(model, False)}
        if defence.record_ is not None:
            meta.update(
                finetune_epochs_run=defence.record_.epochs_run, finetune_best_epoch=defence.record_.best_epoch
            )
        return meta
