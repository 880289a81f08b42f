"""int8 quantization as an ART transformer, and the gradient-free ART classifier it returns."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from art.defences.transformer.transformer import Transformer
from art.estimators.classification import PyTorchClassifier
from torch import nn

from gap_art.classifiers import (
    GradientFreeError,
    check_pytorch_classifier,
    is_gradient_free,
    require_gradients,
)
from gap_art.errors import ParameterError
from gap_art.quantization import QUANTIZER_BACKENDS, compile_int8, quantize_int8
from gap_art.runtime import seeded_subset
from gap_art.validation import check_choice, check_inputs, check_int


class _RefuseGradient(torch.autograd.Function):
    """Ties the output to the input; a backward pass through it is refused with advice."""

    @staticmethod
    def forward(ctx: Any, output: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return output.view_as(output)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise GradientFreeError(
            "an int8 model has no usable gradient, so white-box attacks cannot run on it: "
            "craft adversarial examples on a surrogate (its float model, "
            "Int8Classifier.surrogate, or the source model) and transfer them"
        )


class GradientFreeModule(nn.Module):
    """Wraps a converted int8 model so that backpropagating through it fails clearly."""

    def __init__(self, quantized: nn.Module) -> None:
        super().__init__()
        self.quantized = quantized

    def train(self, mode: bool = True) -> GradientFreeModule:
        """Record the mode only: the int8 graph is fixed in eval mode, and switching an
        exported graph (as ART's ``predict`` does on every call) rewrites it each time."""
        self.training = mode
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        output = self.quantized(x.detach().float())
        return _RefuseGradient.apply(output, x) if x.requires_grad else output


class Int8Classifier(PyTorchClassifier):
    """An ART classifier of an int8 model: it predicts, it has no gradients.

    White-box attacks (ART or torchattacks) raise :class:`~gap_art.classifiers.GradientFreeError`;
    use :attr:`surrogate`, the float classifier it was quantized from, to craft examples and
    evaluate them here by transfer.

    :param quantized: The converted PT2E model.
    :param surrogate: The float ART classifier the int8 model came from.
    """

    gradient_free = True

    def __init__(self, quantized: nn.Module, surrogate: PyTorchClassifier) -> None:
        params = surrogate.get_params()
        super().__init__(
            model=GradientFreeModule(quantized),
            loss=params["loss"],
            input_shape=params["input_shape"],
            nb_classes=params["nb_classes"],
            clip_values=params["clip_values"],
            preprocessing_defences=params["preprocessing_defences"],
            postprocessing_defences=params["postprocessing_defences"],
            preprocessing=params["preprocessing"],
            channels_first=params["channels_first"],
            device_type="cpu",
        )
        self.surrogate = surrogate

    @property
    def quantized_model(self) -> nn.Module:
        """The converted int8 ``GraphModule``."""
        return self.model.quantized

    def _refuse(self, what: str) -> GradientFreeError:
        return GradientFreeError(
            f"{what} is not available on an int8 classifier: craft adversarial examples on "
            "a surrogate (Int8Classifier.surrogate, its float model, or the source model) "
            "and evaluate them here as a transfer target"
        )

    def loss_gradient(self, *args: Any, **kwargs: Any) -> np.ndarray:
        raise self._refuse("loss_gradient")

    def class_gradient(self, *args: Any, **kwargs: Any) -> np.ndarray:
        raise self._refuse("class_gradient")

    def fit(self, *args: Any, **kwargs: Any) -> None:
        raise self._refuse("fit (training)")


class Int8Quantization(Transformer):
    """8-bit post-training static quantization of an ART PyTorch classifier (torchao PT2E).

    ``fit(x)`` calibrates the activation ranges on ``x``; calling the transformer returns an
    :class:`Int8Classifier` that predicts on numpy input of any batch size, keeps the clip
    values and preprocessing of the input classifier, and refuses gradients. Pruned models
    (masks present) are accepted: their zeros stay exactly zero.

    :param classifier: A float ART ``PyTorchClassifier`` (never modified).
    :param backend: ``x86`` (server CPUs) or ``xnnpack`` (mobile).
    :param nb_calibration: Use a seeded subset of this many calibration examples (all if None).
    :param batch_size: Calibration batch size.
    :param seed: Seed of the calibration subset.
    :param compiled: Also ``torch.compile`` the int8 model for fused int8 kernels (optional
        speed path; compiling takes a while, predictions stay the same up to rounding).
    """

    params = ["backend", "nb_calibration", "batch_size", "seed", "compiled"]

    def __init__(
        self,
        classifier: PyTorchClassifier,
        backend: str = "x86",
        nb_calibration: int | None = 1000,
        batch_size: int = 256,
        seed: int = 0,
        compiled: bool = False,
    ) -> None:
        check_pytorch_classifier(classifier)
        super().__init__(classifier)
        self.backend = backend
        self.nb_calibration = nb_calibration
        self.batch_size = batch_size
        self.seed = seed
        self.compiled = compiled
        self.quantized_model_: nn.Module | None = None
        self._check_params()

    def fit(self, x: np.ndarray, y: np.ndarray | None = None, **kwargs: Any) -> None:
        """Calibrate on ``x`` (numpy, the classifier's input shape; labels are not needed)."""
        x = check_inputs(x, self.classifier.input_shape)
        x = x[seeded_subset(len(x), self.nb_calibration, self.seed)]
        classifier = self.classifier
        processed, _ = classifier._apply_preprocessing(x, y=None, fit=False)
        calibration = torch.as_tensor(np.asarray(processed, dtype=np.float32))
        quantized = quantize_int8(classifier.model, calibration, self.backend, self.batch_size)
        if self.compiled:
            quantized = compile_int8(quantized, calibration[: self.batch_size])
        self.quantized_model_ = quantized
        self._is_fitted = True

    def __call__(
        self, x: np.ndarray, transformed_classifier: PyTorchClassifier | None = None
    ) -> Int8Classifier:
        """Return the int8 classifier, calibrating on ``x`` first if not fitted.

        :param transformed_classifier: Not used by quantization; must be ``None``.
        """
        if transformed_classifier is not None:
            raise ParameterError(
                "transformed_classifier must be None: Int8Quantization builds a new "
                "Int8Classifier from the classifier given at construction"
            )
        if not self.is_fitted:
            self.fit(x)
        assert self.quantized_model_ is not None
        return Int8Classifier(self.quantized_model_, self.classifier)

    def _check_params(self) -> None:
        check_choice(self.backend, "backend", QUANTIZER_BACKENDS)
        if self.nb_calibration is not None:
            check_int(self.nb_calibration, "nb_calibration", 1)
        check_int(self.batch_size, "batch_size", 1)
        check_int(self.seed, "seed", 0)
        if not isinstance(self.compiled, bool):
            raise ParameterError(f"compiled must be True or False, got {self.compiled!r}")
        if is_gradient_free(self.classifier):
            raise ParameterError("classifier is already int8: quantize its float surrogate instead")
        require_gradients(self.classifier)
