"""ART's parameter conventions for gap-art's transformers: ``set_params`` that refuses unknown
names, deprecated names accepted with a warning, and the labels given to ``fit`` remembered for
the same inputs."""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np
import torch
from art.defences.transformer.transformer import Transformer
from art.estimators.classification import PyTorchClassifier

from gap_art.classifiers import check_pytorch_classifier
from gap_art.errors import ParameterError, ParameterTypeError
from gap_art.pruning import load_masked_state
from gap_art.settings import FINETUNE_PARAMS, FinetuneSpec, from_params
from gap_art.validation import check_known_params, check_labels


class ArtTransformer(Transformer):
    """An ART transformer whose ``set_params`` refuses names it does not take and accepts
    deprecated ones (:attr:`renamed_params`) with a warning, as its constructor does."""

    renamed_params: ClassVar[dict[str, str]] = {}
    """Deprecated parameter names and today's: accepted by the constructor and
    ``set_params``, with a warning."""

    def _known_names(self, given: dict[str, Any]) -> dict[str, Any]:
        """:meth:`_current_names`, where a name the class does not take (not in its ART
        ``params``) is a ``TypeError``, as Python's own for an unknown keyword."""
        current = self._current_names(given)
        for name in current:
            if name not in getattr(self, "params", ()):
                raise ParameterTypeError(
                    f"{type(self).__name__}() got an unexpected keyword argument {name!r}"
                )
        return current

    def _current_names(self, given: dict[str, Any]) -> dict[str, Any]:
        """``given`` with deprecated parameter names replaced by today's, each with a warning."""
        for old in sorted(set(given) & set(self.renamed_params)):
            new = self.renamed_params[old]
            message = f"{type(self).__name__}({old}=...) is deprecated: use {new}="
            warnings.warn(message, FutureWarning, stacklevel=3)
        return {self.renamed_params.get(name, name): value for name, value in given.items()}

    def set_params(self, **kwargs: Any) -> None:
        """Change parameters (ART's convention), refusing unknown names; then
        :meth:`_params_changed` hears which values changed. A refused value leaves every
        parameter as it was, so the transformer stays usable."""
        kwargs = self._current_names(kwargs)
        check_known_params(kwargs, self.params, type(self).__name__)
        previous = {name: getattr(self, name) for name in kwargs}
        changed = {name for name, value in kwargs.items() if previous[name] != value}
        try:
            super().set_params(**kwargs)
        except (ValueError, TypeError):
            for name, value in previous.items():
                setattr(self, name, value)
            raise
        self._params_changed(changed)

    def _params_changed(self, changed: set[str]) -> None:
        """Called by :meth:`set_params` with the names whose values changed."""

    @staticmethod
    def _deliver(
        result: PyTorchClassifier, transformed_classifier: PyTorchClassifier | None
    ) -> PyTorchClassifier:
        """``result``, or, when given (ART's ``transformed_classifier``), that classifier with
        ``result``'s weights and masks loaded into its model (same architecture)."""
        if transformed_classifier is None:
            return result
        check_pytorch_classifier(transformed_classifier, "transformed_classifier")
        load_masked_state(transformed_classifier.model, result.model.state_dict())
        return transformed_classifier


class CalibratedPruning(ArtTransformer):
    """What gap-art's pruning transformers share: ``fit`` reads calibration data and scores on
    it, ``__call__`` prunes and fine-tunes. The labels given to ``fit`` serve the same inputs
    later; changing a parameter of :attr:`scoring_params` drops the scores (the next call fits
    again); the fine-tuning settings are one validated spec."""

    scoring_params: ClassVar[frozenset[str]] = frozenset()
    """Parameters the fitted scores depend on (the others act after scoring, and keep them)."""
    scores_: dict[str, torch.Tensor] | None = None
    _fit_data: tuple[np.ndarray, np.ndarray | None] | None = None

    def finetune_spec(self) -> FinetuneSpec:
        """The fine-tuning settings as one validated spec (errors name this class's parameters)."""
        return from_params(FinetuneSpec, self, FINETUNE_PARAMS)

    def _labels(self, x: np.ndarray, y: object, required: bool, call: str) -> np.ndarray | None:
        """The labels of ``x``: ``y``, else those given to ``fit`` for the same ``x``."""
        where = f"{type(self).__name__}.{call}"
        return labels_of(x, y, self._fit_data, self.classifier.nb_classes, required, where)

    def _params_changed(self, changed: set[str]) -> None:
        if changed & self.scoring_params:
            self.scores_, self._is_fitted = None, False


def labels_of(
    x: np.ndarray,
    y: object,
    fitted: tuple[np.ndarray, np.ndarray | None] | None,
    nb_classes: int,
    required: bool,
    where: str,
) -> np.ndarray | None:
    """The labels of ``x``: ``y`` (indices or one-hot), else those ``fit`` was given for the same
    ``x`` (``fitted``); ``None`` when neither and not ``required``.

    :raises ValueError: Labels required and none given, naming ``where``.
    """
    if y is None and fitted is not None and fitted[1] is not None:
        fitted_x, fitted_labels = fitted
        if fitted_x is x or (fitted_x.shape == x.shape and np.array_equal(fitted_x, x)):
            return fitted_labels
    if y is None and not required:
        return None
    if y is None:
        raise ParameterError(
            f"y is required by {where}: pass the true labels of x (class indices or one-hot)"
        )
    return check_labels(y, len(x), nb_classes)
