"""ART's built-in defences, with the settings gap-art compares GAP against, in one registry.

Two kinds: *preprocessors* put one of ART's input transformations in front of a classifier;
*trainers* train a defended copy (adversarial training, distillation). Add one with
``@gap_art.defences.art_builtin.register("name")`` on a :class:`PreprocessorDefence` or
:class:`TrainedDefence` subclass (or through the ``gap_art.defences`` entry-point group).
"""

from __future__ import annotations

import contextlib
import io
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np
import torch
from art.defences.preprocessor import FeatureSqueezing, JpegCompression, SpatialSmoothing
from art.defences.preprocessor.preprocessor import Preprocessor
from art.defences.trainer import AdversarialTrainerFBFPyTorch, AdversarialTrainerMadryPGD
from art.defences.transformer.evasion import DefensiveDistillation
from art.estimators.classification import PyTorchClassifier
from torch import nn

from gap_art.attacks import AttackSpec, build_attack, clip_range, default_eps_step
from gap_art.classifiers import rewrap_classifier
from gap_art.defences.transfer_adversarial import TransferAdversarialFinetuning
from gap_art.pruning import clone_module
from gap_art.registry import Registry
from gap_art.runtime import seeded
from gap_art.settings import FinetuneSpec
from gap_art.training import EpochHook, FinetuneRecord, train_to_convergence, watch, watched

DISTILLATION_TEMPERATURE = 10.0


class ArtDefence:
    """One of ART's defences as gap-art applies it."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    kind: ClassVar[str] = ""


class PreprocessorDefence(ArtDefence):
    """An ART input transformation placed in front of the (unchanged) model."""

    kind = "preprocessor"

    @abstractmethod
    def preprocessor(self, clip_values: tuple[float, float]) -> Preprocessor:
        """The ART preprocessor, for inputs in ``clip_values``."""

    def apply(self, classifier: PyTorchClassifier) -> PyTorchClassifier:
        """The same model behind this preprocessing defence (a new classifier)."""
        defended = rewrap_classifier(classifier, classifier.model)
        defended.set_params(preprocessing_defences=[self.preprocessor(clip_range(classifier))])
        return defended


@dataclass(frozen=True)
class TrainingData:
    """What a trained defence learns from.

    :param student: A freshly initialised model of the source's architecture (for defences
        that train from scratch).
    :param training: Epochs (the maximum with a patience), batch size, seed and validation
        split. With a patience, adversarial fine-tuning stops after that many epochs without
        a better score on the held-out rows and keeps the best epoch (at least one: the
        undefended source is never kept). The score is what the trainer optimises, accuracy
        under FGSM at ``eps`` crafted on the model being trained: clean accuracy would pick
        the least hardened epoch.
    :param eps: Budget of adversarial training (input units).
    :param validation: ``(x_val, y_val)`` that score, rows no model trained on (``None``: a
        seeded share of ``x`` held out).
    :param monitor: A training curve's hook, called with 0 and the model before adversarial
        fine-tuning, then after each epoch. With one and no patience, the trainer is called one
        epoch at a time, as with a patience (FBF's cyclic learning rate then spans one epoch).
    """

    x: np.ndarray
    y: np.ndarray
    student: nn.Module
    training: FinetuneSpec
    eps: float
    validation: tuple[np.ndarray, np.ndarray] | None = None
    monitor: Callable[[int, PyTorchClassifier], None] | None = None


class TrainedDefence(ArtDefence):
    """An ART trainer or transformer that produces a defended model (logits out).

    :cvar from_scratch: Trains a new model as long as the source was trained (distillation);
        otherwise fine-tunes a copy of the source for the study's defence epochs.
    :cvar adversarial: Trains on adversarial examples at the study's eps.
    """

    kind = "trainer"
    from_scratch: ClassVar[bool] = False
    adversarial: ClassVar[bool] = False
    record_: FinetuneRecord | None = None
    """Epochs run and kept by the last :meth:`train` with early stopping."""

    def train(self, source: PyTorchClassifier, data: TrainingData) -> nn.Module:
        """Train the defended model, seeded, with ART's own progress bars silenced."""
        self.record_ = None
        with seeded(data.training.seed), contextlib.redirect_stderr(io.StringIO()):
            return self._train(source, data).eval()

    @abstractmethod
    def _train(self, source: PyTorchClassifier, data: TrainingData) -> nn.Module: ...


def _robust_accuracy(classifier: PyTorchClassifier, x: np.ndarray, y: np.ndarray, eps: float) -> float:
    """Accuracy under FGSM at ``eps`` crafted on ``classifier`` itself (seeded, deterministic)."""
    x_adv = build_attack(AttackSpec("fgsm", eps=eps), classifier).generate(x, y)
    return float((classifier.predict(x_adv).argmax(1) == y).mean())


class AdversarialFinetuning(TrainedDefence):
    """An ART adversarial trainer fine-tuning a copy of the source at the study's eps."""

    adversarial = True

    def _train(self, source: PyTorchClassifier, data: TrainingData) -> nn.Module:
        trainee = rewrap_classifier(source, clone_module(source.model))  # the source stays as it is

        def train(x: np.ndarray, y: np.ndarray, after_epoch: EpochHook | None) -> None:
            watch(data.monitor, 0, trainee)
            if after_epoch is None and data.monitor is None:
                self._fit(trainee, replace(data, x=x, y=y))
                return
            one_epoch = replace(data, x=x, y=y, training=replace(data.training, epochs=1))
            hook = watched(after_epoch, data.monitor, trainee)
            for epoch in range(1, data.training.epochs + 1):
                self._fit(trainee, one_epoch)
                if hook(epoch):
                    return

        def score(x_held: np.ndarray, y_held: np.ndarray) -> Callable[[], float]:
            return lambda: _robust_accuracy(trainee, x_held, y_held, data.eps)

        record = train_to_convergence(
            trainee.model, data.x, data.y, data.training, train, score, False, data.validation
        )
        self.record_ = record if data.training.patience is not None else None
        return trainee.model

    @abstractmethod
    def _fit(self, trainee: PyTorchClassifier, data: TrainingData) -> None:
        """Train ``trainee`` in place with the ART trainer."""


ART_DEFENCES: Registry[type[ArtDefence]] = Registry("ART defence", "gap_art.defences")
register = ART_DEFENCES.register


def get(name: str, param: str | None = None) -> ArtDefence:
    """A fresh instance of the ART defence registered as ``name``."""
    return ART_DEFENCES.get(name, param)()


class _Float32FeatureSqueezing(FeatureSqueezing):
    """ART's ``FeatureSqueezing`` returns float64, which a float32 PyTorch model refuses."""

    def __call__(self, x: np.ndarray, y: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        squeezed, y = super().__call__(x, y)
        return squeezed.astype(np.float32), y


@register("feature-squeezing")
class FeatureSqueezingDefence(PreprocessorDefence):
    description = "ART FeatureSqueezing, 4-bit colour depth"

    def preprocessor(self, clip_values: tuple[float, float]) -> Preprocessor:
        return _Float32FeatureSqueezing(clip_values=clip_values, bit_depth=4)


@register("spatial-smoothing")
class SpatialSmoothingDefence(PreprocessorDefence):
    description = "ART SpatialSmoothing, 3x3 median filter"

    def preprocessor(self, clip_values: tuple[float, float]) -> Preprocessor:
        return SpatialSmoothing(window_size=3, channels_first=True, clip_values=clip_values)


@register("jpeg")
class JpegDefence(PreprocessorDefence):
    description = "ART JpegCompression, quality 50"

    def preprocessor(self, clip_values: tuple[float, float]) -> Preprocessor:
        return JpegCompression(clip_values=clip_values, quality=50, channels_first=True)


class _TemperatureSoftmax(nn.Module):
    """Probabilities at temperature ``T``: what defensive distillation trains and distils."""

    def __init__(self, model: nn.Module, temperature: float) -> None:
        super().__init__()
        self.model, self.temperature = model, temperature

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(x) / self.temperature, dim=1)


class _SoftLabelCrossEntropy(nn.Module):
    """Cross-entropy between predicted and target probabilities (soft labels)."""

    def forward(self, probabilities: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return -(target * probabilities.clamp_min(1e-12).log()).sum(dim=1).mean()


def _probability_classifier(
    source: PyTorchClassifier, model: nn.Module, loss: nn.Module
) -> PyTorchClassifier:
    return PyTorchClassifier(
        model=_TemperatureSoftmax(model, DISTILLATION_TEMPERATURE),
        loss=loss,
        input_shape=source.input_shape,
        nb_classes=source.nb_classes,
        optimizer=torch.optim.Adam(model.parameters(), lr=1e-3),
        clip_values=source.clip_values,
        preprocessing=source.preprocessing,
        device_type="gpu" if torch.device(source.device).type == "cuda" else "cpu",
    )


@register("distillation")
class DistillationDefence(TrainedDefence):
    description = "ART DefensiveDistillation, temperature 10, a student trained from scratch"
    from_scratch = True

    def _train(self, source: PyTorchClassifier, data: TrainingData) -> nn.Module:
        teacher = _probability_classifier(source, source.model, nn.CrossEntropyLoss())
        pupil = _probability_classifier(source, data.student, _SoftLabelCrossEntropy())
        training = data.training
        DefensiveDistillation(teacher, batch_size=training.batch_size, nb_epochs=training.epochs)(
            data.x, pupil
        )
        return data.student


@register("madry-pgd")
class MadryPGDDefence(AdversarialFinetuning):
    description = "ART AdversarialTrainerMadryPGD (PGD-7 at the study's eps), fine-tuning the source"

    def _fit(self, trainee: PyTorchClassifier, data: TrainingData) -> None:
        AdversarialTrainerMadryPGD(
            trainee,
            nb_epochs=data.training.epochs,
            batch_size=data.training.batch_size,
            eps=data.eps,
            eps_step=default_eps_step(data.eps),
            max_iter=7,
        ).fit(data.x, data.y)


@register("fbf")
class FastIsBetterThanFreeDefence(AdversarialFinetuning):
    description = "ART AdversarialTrainerFBFPyTorch (fast FGSM training at the study's eps)"

    def _fit(self, trainee: PyTorchClassifier, data: TrainingData) -> None:
        # FBF drives the learning rate itself (a cyclic schedule meant for SGD)
        trainee.set_params(optimizer=torch.optim.SGD(trainee.model.parameters(), lr=0.01, momentum=0.9))
        one_hot = np.eye(trainee.nb_classes, dtype=np.float32)[data.y]  # FBF wants one-hot labels
        AdversarialTrainerFBFPyTorch(trainee, eps=data.eps).fit(
            data.x, one_hot, nb_epochs=data.training.epochs, batch_size=data.training.batch_size
        )


@register("ensemble-adv")
class EnsembleAdversarialTraining(TrainedDefence):
    description = (
        "ART AdversarialTrainer: ensemble adversarial training (Tramer et al.) of a copy of the "
        "source on its own FGSM + PGD from the frozen source"
    )
    adversarial = True

    def _train(self, source: PyTorchClassifier, data: TrainingData) -> nn.Module:
        training = replace(data.training, epochs=max(1, data.training.epochs))
        hardener = TransferAdversarialFinetuning.from_specs(
            source, source, AttackSpec(eps=data.eps), training
        )
        hardener.set_params(self_attack="fgsm")
        hardener.finetune_monitor = data.monitor
        model = hardener(data.x, y=data.y, validation_data=data.validation).model
        self.record_ = hardener.finetune_record_ if training.patience is not None else None
        return model
