"""The targets a study attacks, one kind per family: dense, pruned, int8, ART preprocessor and
ART trainer. Each kind has a typed spec (what determines the target, hashed into its task
id), ``build`` (make it and return its metadata) and ``load`` (rebuild its classifier from that
metadata in any process)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
from art.estimators.classification import PyTorchClassifier
from typing_extensions import dataclass_transform

from gap_art.bench.context import Context, Meta
from gap_art.defences import Int8Quantization
from gap_art.defences.art_builtin import PreprocessorDefence, TrainedDefence, TrainingData
from gap_art.defences.art_builtin import get as get_art_defence
from gap_art.defences.methods import Method, apply_method, parse_method
from gap_art.models import create_model
from gap_art.models.registry import model_recipe
from gap_art.pruning import layer_sparsity, measure_compression, prunable_parameters
from gap_art.quantization import model_size
from gap_art.training import RECIPES

S = TypeVar("S", bound="TargetSpec")


@dataclass(frozen=True)
class TargetSpec:
    """What determines a target. ``kind`` picks the code that builds it; ``family`` is the
    row column reports group by."""

    kind: ClassVar[str] = ""
    family: ClassVar[str] = ""
    seed: int
    name: str
    method: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "family": self.family, **asdict(self)}


SPECS: dict[str, type[TargetSpec]] = {}


@dataclass_transform(frozen_default=True)
def target_spec(kind: str, family: str) -> Callable[[type[S]], type[S]]:
    """Declare a frozen spec dataclass for target ``kind`` (reported under ``family``)."""

    def declare(cls: type[S]) -> type[S]:
        cls.kind, cls.family = kind, family
        SPECS[kind] = cls
        return dataclass(frozen=True)(cls)

    return declare


@target_spec("dense", "baseline")
class DenseSpec(TargetSpec):
    """The source model, unchanged: the reference every other target is compared with."""


@target_spec("pruned", "pruning")
class PrunedSpec(TargetSpec):
    """A method (see :mod:`gap_art.defences.methods`) at one ratio, fine-tuned (to
    convergence with a patience); ``gap_eps`` and ``gap_eps_step`` are the calibration
    attack's budget, for criteria with one; ``rounds`` those of ``+iter`` methods;
    ``harden_eps`` the budget of the PGD a ``+tat``/``+gal`` method hardens against."""

    requested_compression: float = 2.0
    finetune_epochs: int = 0
    finetune_patience: int | None = None
    validation_fraction: float = 0.1
    prune_classifier: bool = False
    n_calibration: int = 512
    gap_eps: float | None = None
    gap_eps_step: float | None = None
    rounds: int = 1
    harden_eps: float | None = None


@target_spec("int8", "quantization")
class Int8Spec(TargetSpec):
    """The int8 version of another target (``parent``, a float target's name)."""

    parent: str = ""


@target_spec("art-preprocessor", "art_defence")
class ArtPreprocessorSpec(TargetSpec):
    """The source behind one of ART's input transformations (``method`` names it)."""


@target_spec("art-trainer", "art_defence")
class ArtTrainerSpec(TargetSpec):
    """An ART trained defence: ``epochs`` of training (the maximum with a ``patience``), at
    ``eps`` when adversarial."""

    epochs: int = 1
    eps: float | None = None
    patience: int | None = None
    validation_fraction: float = 0.1


def spec_from_dict(data: dict[str, Any]) -> TargetSpec:
    """The typed spec of a target task's spec dict."""
    spec_type = SPECS[data["kind"]]
    return spec_type(**{f.name: data[f.name] for f in fields(spec_type) if f.name in data})


GAP_STEPS = 10
"""Iterations of GAP's calibration attack in the bench (the reference's)."""

INHERITED = (
    "finetune_epochs_run",
    "finetune_best_epoch",
    "excluded_layers",
    "gap_eps",
    "gap_eps_step",
    "gap_steps",
)
"""What an int8 target reports of the float target it quantizes."""


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


class TargetKind(ABC):
    """How one family of targets is built and loaded."""

    @abstractmethod
    def build(self, task_id: str, spec: Any, deps: list[Meta], ctx: Context) -> Meta:
        """Make the target; ``deps`` are the metadata of the task's dependencies, in order
        (the source first)."""

    def load(self, meta: Meta, spec: Any, ctx: Context) -> PyTorchClassifier:
        """The target's classifier from its metadata."""
        return ctx.classifier(meta["checkpoint"])


class DenseKind(TargetKind):
    """The source model itself."""

    def build(self, task_id: str, spec: DenseSpec, deps: list[Meta], ctx: Context) -> Meta:
        return {key: value for key, value in deps[0].items() if key != "traceback"}


class PrunedKind(TargetKind):
    """A registered pruning criterion applied to the source, then fine-tuned. With a second
    dependency (a craft task), the fine-tuning curve is recorded on its examples:
    ``[epoch, clean accuracy, transfer accuracy]`` before and after each epoch."""

    def build(self, task_id: str, spec: PrunedSpec, deps: list[Meta], ctx: Context) -> Meta:
        method = parse_method(spec.method)
        finetuning = {
            "finetune_epochs": spec.finetune_epochs,
            "finetune_patience": spec.finetune_patience,
            "validation_fraction": spec.validation_fraction,
        }
        optimizer = RECIPES[model_recipe(ctx.config.model)].optimizer
        pruning = {
            **finetuning,
            "finetune_optimizer": optimizer,
            "prune_classifier": spec.prune_classifier,
            "nb_calibration": spec.n_calibration,
            "rounds": spec.rounds,
            "seed": spec.seed,
            **self._attack_settings(spec, method),
        }
        hardening = {
            "eps": spec.harden_eps,
            "epochs": max(1, spec.finetune_epochs),
            "patience": spec.finetune_patience,
            "validation_fraction": spec.validation_fraction,
            "optimizer": optimizer,
            "seed": spec.seed,
        }
        curve: list[list[float]] = []
        monitor = self._curve_recorder(ctx, ctx.examples(deps[1]), curve) if len(deps) > 1 else None
        x_train, y_train = ctx.data.numpy("train")
        result = apply_method(
            spec.method,
            ctx.classifier(deps[0]["checkpoint"]),
            spec.requested_compression,
            *ctx.calibration_set(spec.seed),
            x_train,
            y_train,
            pruning,
            hardening,
            finetune_monitor=monitor,
        )
        model = result.classifier.model
        meta = {
            "checkpoint": ctx.save_model(task_id, model),
            **size_fields(model, False, spec.prune_classifier),
            "excluded_layers": result.excluded_layers,
            "finetune_epochs_run": sum(record.epochs_run for record in result.records),
            "finetune_best_epoch": result.records[-1].best_epoch,
        }
        if method.adversarial:
            meta.update(gap_eps=spec.gap_eps, gap_eps_step=spec.gap_eps_step, gap_steps=GAP_STEPS)
        if curve:
            meta["finetune_curve"] = curve
        return meta

    @staticmethod
    def _attack_settings(spec: PrunedSpec, method: Method) -> dict[str, Any]:
        if not method.adversarial:
            return {}
        return {"max_iter": GAP_STEPS, "eps": spec.gap_eps, "eps_step": spec.gap_eps_step}

    @staticmethod
    def _curve_recorder(ctx: Context, x_adv: np.ndarray, curve: list[list[float]]) -> Any:
        x, y = ctx.evaluation_set()
        both, labels = np.concatenate([x, x_adv]), np.concatenate([y, y])

        def record(epoch: int, pruned: PyTorchClassifier) -> None:
            correct = pruned.predict(both, batch_size=1024).argmax(1) == labels
            curve.append([epoch, float(correct[: len(x)].mean()), float(correct[len(x) :].mean())])

        return record


def quantize(classifier: PyTorchClassifier, seed: int, ctx: Context) -> PyTorchClassifier:
    """The int8 version of a float classifier, calibrated on the seed's calibration set."""
    x_cal, _ = ctx.calibration_set(seed)
    return Int8Quantization(classifier, nb_calibration=None, seed=seed)(x_cal)


class Int8Kind(TargetKind):
    """A float target (the second dependency) quantized to int8. int8 models are rebuilt in
    each process from the parent's checkpoint (quantizing is fast and deterministic)."""

    def build(self, task_id: str, spec: Int8Spec, deps: list[Meta], ctx: Context) -> Meta:
        parent = deps[1]
        float_classifier = ctx.classifier(parent["checkpoint"])
        ctx.keep_target(task_id, quantize(float_classifier, spec.seed, ctx))
        inherited = {key: parent[key] for key in INHERITED if key in parent}
        prune_classifier = parent.get("spec", {}).get("prune_classifier", False)
        return {
            "parent_checkpoint": parent["checkpoint"],
            **size_fields(float_classifier.model, True, prune_classifier),
            **inherited,
        }

    def load(self, meta: Meta, spec: Int8Spec, ctx: Context) -> PyTorchClassifier:
        return quantize(ctx.classifier(meta["parent_checkpoint"]), spec.seed, ctx)


class ArtPreprocessorKind(TargetKind):
    """The source model behind one of ART's preprocessing defences."""

    def build(self, task_id: str, spec: ArtPreprocessorSpec, deps: list[Meta], ctx: Context) -> Meta:
        source = deps[0]
        meta = {"checkpoint": source["checkpoint"], "preprocessor": spec.method}
        keys = ("compression", "sparsity", "size_bytes", "size_encoding", "layer_sparsity")
        meta.update({k: source[k] for k in keys})
        return meta

    def load(self, meta: Meta, spec: ArtPreprocessorSpec, ctx: Context) -> PyTorchClassifier:
        defence = get_art_defence(spec.method)
        assert isinstance(defence, PreprocessorDefence)
        return defence.apply(ctx.classifier(meta["checkpoint"]))


class ArtTrainerKind(TargetKind):
    """A model trained by one of ART's trainers (from the source, or from scratch)."""

    def build(self, task_id: str, spec: ArtTrainerSpec, deps: list[Meta], ctx: Context) -> Meta:
        defence = get_art_defence(spec.method)
        assert isinstance(defence, TrainedDefence)
        info = ctx.data.info
        torch.manual_seed(spec.seed)
        student = create_model(ctx.config.model, info.input_shape, info.nb_classes)
        x, y = ctx.data.numpy("train")
        eps = spec.eps or 0.0
        data = TrainingData(
            x, y, student, spec.epochs, eps, spec.seed, 128, spec.patience, spec.validation_fraction
        )
        model = defence.train(ctx.classifier(deps[0]["checkpoint"]), data)
        meta = {"checkpoint": ctx.save_model(task_id, model), **size_fields(model, False)}
        if defence.record_ is not None:
            meta.update(
                finetune_epochs_run=defence.record_.epochs_run, finetune_best_epoch=defence.record_.best_epoch
            )
        return meta


KINDS: dict[str, TargetKind] = {
    "dense": DenseKind(),
    "pruned": PrunedKind(),
    "int8": Int8Kind(),
    "art-preprocessor": ArtPreprocessorKind(),
    "art-trainer": ArtTrainerKind(),
}
