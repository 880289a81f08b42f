"""ART's built-in defences applied to the bench's base model, for comparison with GAP."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator

import numpy as np
import torch
from art.defences.preprocessor import FeatureSqueezing, JpegCompression, SpatialSmoothing
from art.defences.preprocessor.preprocessor import Preprocessor
from art.defences.trainer import AdversarialTrainerFBFPyTorch, AdversarialTrainerMadryPGD
from art.defences.transformer.evasion import DefensiveDistillation
from art.estimators.classification import PyTorchClassifier
from torch import nn

from gap_art.classifiers import clone_module, rewrap_classifier
from gap_art.training import seeded

PREPROCESSORS = ("feature-squeezing", "spatial-smoothing", "jpeg")
TRAINED = ("distillation", "madry-pgd", "fbf")
DISTILLATION_TEMPERATURE = 10.0


class _Float32FeatureSqueezing(FeatureSqueezing):
    """ART's ``FeatureSqueezing`` returns float64, which a float32 PyTorch model refuses."""

    def __call__(self, x: np.ndarray, y: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        squeezed, y = super().__call__(x, y)
        return squeezed.astype(np.float32), y


@contextlib.contextmanager
def _quiet_art_progress() -> Iterator[None]:
    """ART's trainers draw their own tqdm bars; the bench shows one bar over its cells."""
    with contextlib.redirect_stderr(io.StringIO()):
        yield


def make_preprocessor(name: str, clip_values: tuple[float, float]) -> Preprocessor:
    """ART's input-transformation defences with their usual settings."""
    if name == "feature-squeezing":
        return _Float32FeatureSqueezing(clip_values=clip_values, bit_depth=4)
    if name == "spatial-smoothing":
        return SpatialSmoothing(window_size=3, channels_first=True, clip_values=clip_values)
    if name == "jpeg":
        return JpegCompression(clip_values=clip_values, quality=50, channels_first=True)
    raise ValueError(f"preprocessor must be one of {list(PREPROCESSORS)}, got {name!r}")


def with_preprocessor(classifier: PyTorchClassifier, name: str) -> PyTorchClassifier:
    """The same model behind one of ART's preprocessing defences."""
    clip = tuple(float(v) for v in np.asarray(classifier.clip_values).reshape(2, -1)[:, 0])
    defended = rewrap_classifier(classifier, classifier.model)
    defended.set_params(preprocessing_defences=[make_preprocessor(name, clip)])  # type: ignore[arg-type]
    return defended


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
    source: PyTorchClassifier, model: nn.Module, loss: nn.Module, lr: float = 1e-3
) -> PyTorchClassifier:
    return PyTorchClassifier(
        model=_TemperatureSoftmax(model, DISTILLATION_TEMPERATURE),
        loss=loss,
        input_shape=source.input_shape,
        nb_classes=source.nb_classes,
        optimizer=torch.optim.Adam(model.parameters(), lr=lr),
        clip_values=source.clip_values,
        preprocessing=source.preprocessing,
        device_type="gpu" if torch.device(source.device).type == "cuda" else "cpu",
    )


def train_defence(
    name: str,
    source: PyTorchClassifier,
    student: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    epochs: int,
    eps: float,
    seed: int,
    batch_size: int = 128,
) -> nn.Module:
    """Train one of ART's trained defences; returns the defended model (logits out).

    :param student: A freshly initialised model of the source's architecture (distillation).
    :param eps: Budget of adversarial training.
    """
    with seeded(seed), _quiet_art_progress():
        if name == "distillation":
            teacher = _probability_classifier(source, source.model, nn.CrossEntropyLoss())
            pupil = _probability_classifier(source, student, _SoftLabelCrossEntropy())
            DefensiveDistillation(teacher, batch_size=batch_size, nb_epochs=epochs)(x, pupil)
            return student.eval()
        model = clone_module(source.model)
        if name == "madry-pgd":
            trainee = rewrap_classifier(source, model)
            trainer = AdversarialTrainerMadryPGD(
                trainee,
                nb_epochs=epochs,
                batch_size=batch_size,
                eps=eps,
                eps_step=eps / 4,
                max_iter=7,
            )
            trainer.fit(x, y)
            return model.eval()
        if name == "fbf":
            trainee = rewrap_classifier(source, model)
            # FBF drives the learning rate itself (a cyclic schedule meant for SGD)
            trainee.set_params(optimizer=torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9))
            one_hot = np.eye(source.nb_classes, dtype=np.float32)[y]  # FBF wants one-hot labels
            AdversarialTrainerFBFPyTorch(trainee, eps=eps).fit(
                x, one_hot, nb_epochs=epochs, batch_size=batch_size
            )
            return model.eval()
    raise ValueError(f"trained defence must be one of {list(TRAINED)}, got {name!r}")
