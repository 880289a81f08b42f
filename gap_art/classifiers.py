"""The ART layer: wrap models as ART classifiers, rewrap them, and run their forward pass
(preprocessing included) as a differentiable ``nn.Module``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from art.estimators.classification import PyTorchClassifier
from torch import nn

from gap_art.data import DatasetInfo
from gap_art.errors import ParameterError, ParameterTypeError
from gap_art.runtime import resolve_device


def to_art_classifier(
    model: nn.Module,
    info: DatasetInfo,
    device: str | torch.device = "auto",
    preprocessing: tuple | None = None,
    lr: float = 1e-3,
) -> PyTorchClassifier:
    """An ART ``PyTorchClassifier`` for ``model`` with the dataset's shape, classes and range.

    :param preprocessing: Optional ``(mean, std)`` applied by ART before the model (default:
        the normalisation ``info`` records, if any).
    :param lr: Learning rate of the Adam optimizer used by ART's ``fit`` and trainers.
    """
    target = resolve_device(device)
    params = list(model.parameters())
    return PyTorchClassifier(
        model=model.eval(),
        loss=nn.CrossEntropyLoss(),
        input_shape=tuple(info.input_shape),
        nb_classes=info.nb_classes,
        optimizer=torch.optim.Adam(params, lr=lr) if params else None,
        clip_values=tuple(info.clip_values),
        preprocessing=preprocessing or info.preprocessing or (0.0, 1.0),
        device_type="gpu" if target.type == "cuda" else "cpu",
    )


def pixel_space(model: nn.Module, info: DatasetInfo) -> nn.Module:
    """``model`` behind the normalisation ``info`` records (ART's preprocessing, as an
    ``nn.Module``), for code that trains or scores it on pixel-space tensors; ``model`` itself
    when there is none."""
    if info.preprocessing is None:
        return model
    return ClassifierModule(to_art_classifier(model, info, device="cpu"))


class GradientFreeError(ParameterTypeError):
    """A white-box attack or gradient was asked of a model that has no usable gradient."""


def is_gradient_free(classifier: object) -> bool:
    """Whether ``classifier`` declares itself gradient-free (e.g. an int8 model)."""
    return bool(getattr(classifier, "gradient_free", False))


def require_gradients(classifier: object, param: str = "classifier") -> None:
    """Refuse a gradient-free classifier where gradients are needed, pointing at transfer."""
    if is_gradient_free(classifier):
        raise GradientFreeError(
            f"{param} is gradient-free (an int8 model): craft adversarial examples on a "
            "surrogate, such as its float model (classifier.surrogate) or the source model, "
            "and evaluate them on it as a transfer target"
        )


def check_pytorch_classifier(classifier: object, param: str = "classifier") -> PyTorchClassifier:
    """Refuse anything but an ART ``PyTorchClassifier`` with a message naming ``param``."""
    if not isinstance(classifier, PyTorchClassifier):
        raise ParameterTypeError(
            f"{param} must be an art.estimators.classification.PyTorchClassifier, "
            f"got {type(classifier).__name__}"
        )
    return classifier


def check_differentiable_classifier(classifier: object, param: str = "source") -> Any:
    """Refuse anything but an ART classifier with loss gradients (PyTorch, TensorFlow, JAX,
    scikit-learn's logistic regression, ...): adversarial examples are crafted on it."""
    from art.estimators.estimator import LossGradientsMixin

    if not isinstance(classifier, LossGradientsMixin) or not hasattr(classifier, "nb_classes"):
        raise ParameterTypeError(
            f"{param} must be a differentiable ART classifier (one with loss_gradient, e.g. a "
            f"PyTorchClassifier or TensorFlowV2Classifier), got {type(classifier).__name__}; a model "
            "that only answers predict can be a target, not the model examples are crafted on"
        )
    return classifier


def rewrap_classifier(classifier: PyTorchClassifier, model: nn.Module) -> PyTorchClassifier:
    """A new ART classifier around ``model`` with every setting of ``classifier``.

    Clip values, preprocessing, defences, input shape, class count, loss and device carry
    over; the optimizer is a fresh one of the same type bound to the new model's parameters.
    """
    params = classifier.get_params()
    params["model"] = model
    optimizer = params.get("optimizer")
    if optimizer is not None:
        params["optimizer"] = type(optimizer)(model.parameters(), **optimizer.defaults)
    return type(classifier)(**params)


class ClassifierModule(nn.Module):
    """The ART classifier's forward pass as a differentiable ``nn.Module``.

    Inputs are in the classifier's input space (inside ``clip_values``); ART's
    preprocessing (e.g. ``preprocessing=(mean, std)``) is applied before the model, so
    torch-level code (torchattacks, gradient accumulation) sees what ART predicts.
    """

    def __init__(self, classifier: PyTorchClassifier) -> None:
        super().__init__()
        if not classifier.all_framework_preprocessing:
            raise ParameterError(
                "classifier has preprocessing or preprocessing_defences that are not PyTorch "
                "operations; gap-art needs a differentiable forward pass: use PyTorch-based "
                "preprocessing (e.g. preprocessing=(mean, std)) or attach the defence after pruning"
            )
        self.classifier = classifier
        self.model = classifier.model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.classifier.preprocessing_operations:
            return self.model(x)
        processed, _ = self.classifier._apply_preprocessing(x, None, fit=False, no_grad=False)
        return self.model(processed)


def program_classifier(path: str | Path, info: DatasetInfo) -> Any:
    """A ``.pt2`` program as an ART ``BlackBoxClassifier`` for data of ``info``: queried
    through ``predict`` alone, since an int8 program's operators have no gradients.

    :raises QuantizationError: Missing file, or not a ``torch.export`` program.
    """
    from art.estimators.classification import BlackBoxClassifier

    from gap_art.quantization import load_program

    program = load_program(path)

    def predict(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return program(torch.from_numpy(np.asarray(x, dtype=np.float32))).numpy()

    return BlackBoxClassifier(predict, tuple(info.input_shape), info.nb_classes, clip_values=info.clip_values)
