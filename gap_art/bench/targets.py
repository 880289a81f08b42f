"""The targets a study attacks, one kind per family: dense, pruned, int8, ART preprocessor and
ART trainer. Each kind is a typed spec (:class:`~gap_art.bench.target_spec.TargetSpec`) that owns
``build`` (make it and return its :class:`~gap_art.bench.target_spec.TargetResult`) and
``load`` (rebuild its classifier from that result in any process); ``@target_kind`` registers
it, once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import field, replace

import torch
from art.estimators.classification import PyTorchClassifier

from gap_art.bench.context import Context
from gap_art.bench.graph import Dependencies
from gap_art.bench.target_spec import TargetResult, TargetSpec, size_fields, target_kind
from gap_art.bench.task_results import ModelResult, SourceResult
from gap_art.bench.training_curves import CurveRecorder
from gap_art.defences import Int8Quantization
from gap_art.defences.art_builtin import PreprocessorDefence, TrainedDefence, TrainingData
from gap_art.defences.art_builtin import get as get_art_defence
from gap_art.defences.methods import Compressed, apply_method, needs_attack
from gap_art.pruning.structured import ChannelReport
from gap_art.settings import FinetuneSpec, MethodSpec

INHERITED = (
    "finetune_epochs_run",
    "finetune_best_epoch",
    "excluded_layers",
    "gap_eps",
    "gap_eps_step",
    "gap_steps",
)
"""What an int8 target reports of the float target it quantizes."""
CHANNEL_SIZE = ("compression", "macs_before", "macs_after")
"""What an int8 target's size takes from its float parent's (the same weights, fewer bytes)."""


@target_kind("dense", "baseline")
class DenseSpec(TargetSpec):
    """The source model, unchanged: the reference every other target is compared with."""

    def build(self, task_id: str, deps: Dependencies, ctx: Context) -> TargetResult:
        source = deps.one("source", SourceResult)
        return TargetResult(spec=self, checkpoint=source.checkpoint, size=source.size, time_s=source.time_s)


@target_kind("pruned", "pruning")
class PrunedSpec(TargetSpec):
    """A method (see :mod:`gap_art.defences.methods`) applied to the source as ``settings``
    say: its criterion at one ratio, fine-tuned (to convergence with a patience), hardened
    for ``+tat``/``+gal``/``+pool``. With a ``validation`` dependency (a craft on the
    validation rows), the fine-tuning curve is recorded on the validation rows, never on test
    examples: ``[epoch, clean accuracy, transfer accuracy]`` before and after each epoch. Its
    ``pool`` dependencies are the static sources a ``+pool`` hardening trains against beside
    the parent (the defender's own replicas, independent and robust models). With ``curves``
    (the study's ``training_curves``, for hardened and pretrained methods) the curve is the
    full one of :class:`~gap_art.bench.training_curves.CurveRecorder`, transferring also from
    its ``curve from <attacker>`` crafts and its ``replica``."""

    settings: MethodSpec = field(default_factory=MethodSpec)
    curves: bool = False

    @property
    def requested_compression(self) -> float:
        return float(self.settings.compression)

    def replica(self, seed: int) -> PrunedSpec:
        """The same method run with another seed (``settings`` follow)."""
        return replace(self, seed=seed, settings=replace(self.settings, seed=seed))

    def build(self, task_id: str, deps: Dependencies, ctx: Context) -> TargetResult:
        recorder = CurveRecorder(task_id, ctx, deps, self.curves)
        compressed = self.compress(deps, ctx, recorder)
        model = compressed.classifier.model
        result = TargetResult(
            spec=self,
            checkpoint=ctx.save_model(task_id, model),
            size=size_fields(model, False, self.settings.prune_classifier, channel_report(compressed)),
            excluded_layers=tuple(compressed.excluded_layers),
            finetune_epochs_run=sum(record.epochs_run for record in compressed.records),
            finetune_best_epoch=compressed.records[-1].best_epoch,
            **recorder.fields(),
        )
        if not needs_attack(self.settings):
            return result
        attack = self.settings.calibration_attack
        return replace(result, gap_eps=attack.eps, gap_eps_step=attack.eps_step, gap_steps=attack.steps)

    def compress(
        self,
        deps: Dependencies,
        ctx: Context,
        monitor: Callable[[int, PyTorchClassifier], None] | None = None,
    ) -> Compressed:
        """Run the method on the parent (``source``), against its ``pool``, with the seed's
        calibration rows: the target's model and what its fine-tuning did
        (``benchmarks/pool_early_stopping.py`` reruns it from the cache)."""
        pool = [ctx.classifier(member.checkpoint) for member in deps.all("pool", ModelResult)]
        x_train, y_train = ctx.data.numpy("train")
        return apply_method(
            self.settings,
            ctx.classifier(deps.one("source", SourceResult).checkpoint),
            *ctx.calibration_set(self.seed),
            x_train,
            y_train,
            finetune_monitor=monitor,
            extra_sources=pool,
            validation_data=ctx.validation_set(),
        )


def channel_report(compressed: Compressed) -> ChannelReport | None:
    """What channel pruning did to a method's model (``None`` for irregular pruning)."""
    return compressed.report if isinstance(compressed.report, ChannelReport) else None


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

    def build(self, task_id: str, deps: Dependencies, ctx: Context) -> TargetResult:
        parent = deps.one("parent", TargetResult)
        float_classifier = ctx.classifier(parent.checkpoint)
        ctx.keep_target(task_id, quantize(float_classifier, self.seed, ctx))
        size = size_fields(float_classifier.model, True, self.prune_classifier)
        if parent.size is not None:  # a channel-pruned parent's compression and multiply-adds hold
            size = replace(size, **{key: getattr(parent.size, key) for key in CHANNEL_SIZE})
        return TargetResult(
            spec=self,
            parent_checkpoint=parent.checkpoint,
            size=size,
            **{key: getattr(parent, key) for key in INHERITED},
        )

    def load(self, result: TargetResult, ctx: Context) -> PyTorchClassifier:
        assert result.parent_checkpoint is not None, "an int8 target names its float parent"
        return quantize(ctx.classifier(result.parent_checkpoint), self.seed, ctx)


@target_kind("art-preprocessor", "art_defence")
class ArtPreprocessorSpec(TargetSpec):
    """The source behind one of ART's input transformations (``method`` names it)."""

    def build(self, task_id: str, deps: Dependencies, ctx: Context) -> TargetResult:
        source = deps.one("source", SourceResult)
        return TargetResult(spec=self, checkpoint=source.checkpoint, size=source.size)

    def load(self, result: TargetResult, ctx: Context) -> PyTorchClassifier:
        defence = get_art_defence(self.method)
        assert isinstance(defence, PreprocessorDefence)
        return defence.apply(ctx.classifier(result.checkpoint))


@target_kind("art-trainer", "art_defence")
class ArtTrainerSpec(TargetSpec):
    """A model trained by one of ART's trainers (``method``), from the source or from
    scratch, as ``training`` says (epochs; with a patience, to convergence), at ``eps``
    when adversarial. With ``curves``, its training curve is recorded as a pruned target's
    (:class:`~gap_art.bench.training_curves.CurveRecorder`)."""

    training: FinetuneSpec = field(default_factory=FinetuneSpec)
    eps: float | None = None
    curves: bool = False

    def replica(self, seed: int) -> ArtTrainerSpec:
        """ART's training rerun with another seed."""
        return replace(self, seed=seed, training=replace(self.training, seed=seed))

    def build(self, task_id: str, deps: Dependencies, ctx: Context) -> TargetResult:
        defence = get_art_defence(self.method)
        assert isinstance(defence, TrainedDefence)
        torch.manual_seed(self.seed)
        student = ctx.new_model()
        x, y = ctx.data.numpy("train")
        recorder = CurveRecorder(task_id, ctx, deps, self.curves) if self.curves else None
        validation = ctx.validation_set()
        data = TrainingData(x, y, student, self.training, self.eps or 0.0, validation, recorder)
        model = defence.train(ctx.classifier(deps.one("source", SourceResult).checkpoint), data)
        record = defence.record_
        return TargetResult(
            spec=self,
            checkpoint=ctx.save_model(task_id, model),
            size=size_fields(model, False),
            finetune_epochs_run=None if record is None else record.epochs_run,
            finetune_best_epoch=None if record is None else record.best_epoch,
            **({} if recorder is None else recorder.fields()),
        )
