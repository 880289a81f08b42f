"""Clean fine-tuning of a pruned classifier with its masks held, for a number of epochs or to
convergence (:func:`gap_art.training.train_to_convergence`: early stopping on clean accuracy
on validation rows it never trains on)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from art.estimators.classification import PyTorchClassifier
from torch.utils.data import TensorDataset

from gap_art.classifiers import ClassifierModule
from gap_art.settings import FinetuneSpec
from gap_art.training import (
    EpochHook,
    FinetuneRecord,
    Recipe,
    evaluate_accuracy,
    train_model,
    train_to_convergence,
    watched,
)


def finetune(
    classifier: PyTorchClassifier,
    x: np.ndarray,
    labels: np.ndarray,
    spec: FinetuneSpec,
    progress: bool = False,
    monitor: Callable[[int, PyTorchClassifier], None] | None = None,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
) -> FinetuneRecord:
    """Train ``classifier`` in place on ``(x, labels)`` as ``spec`` says (to convergence on
    clean validation accuracy with a patience); pruning masks hold throughout.

    :param monitor: Called with the number of finished epochs and ``classifier`` after each
        epoch.
    :param validation: ``(x_val, y_val)`` early stopping scores (rows no model trained on);
        ``None``: a seeded share of ``(x, labels)`` held out.
    """
    module = ClassifierModule(classifier)
    device = torch.device(classifier.device)
    recipe = Recipe(spec.optimizer, spec.lr, 0.0, "constant", spec.batch_size)

    def train(xs: np.ndarray, ys: np.ndarray, after_epoch: EpochHook | None) -> None:
        data = TensorDataset(torch.from_numpy(xs), torch.from_numpy(ys))
        hook = watched(after_epoch, monitor, classifier)
        train_model(module, data, spec.epochs, recipe, spec.seed, device, progress, "fine-tune", hook)

    def score(x_held: np.ndarray, y_held: np.ndarray) -> Callable[[], float]:
        held = TensorDataset(torch.from_numpy(x_held), torch.from_numpy(y_held))
        return lambda: evaluate_accuracy(module, held, device=device)

    return train_to_convergence(classifier.model, x, labels, spec, train, score, validation=validation)
