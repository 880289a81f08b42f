"""Fine-tuning a pruned classifier with its masks held, for a fixed number of epochs or to
convergence (early stopping on a validation split held out of the training data)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from art.estimators.classification import PyTorchClassifier
from torch.utils.data import TensorDataset

from gap_art.classifiers import ClassifierModule
from gap_art.runtime import seeded_subset
from gap_art.training import EarlyStopping, Recipe, evaluate_accuracy, train_model


@dataclass(frozen=True)
class FinetuneRecord:
    """What fine-tuning did.

    :param epochs_run: Epochs trained (fewer than the maximum when stopped early).
    :param best_epoch: The epoch whose weights were kept (0: the pruned model before training).
    :param validation_accuracy: Clean accuracy on the validation split before training and
        after each epoch (empty without early stopping).
    """

    epochs_run: int
    best_epoch: int
    validation_accuracy: list[float] = field(default_factory=list)


def validation_split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded ``(train, validation)`` indices: ``fraction`` of ``n`` held out (at least one)."""
    held = np.zeros(n, dtype=bool)
    held[seeded_subset(n, max(1, round(n * fraction)), seed)] = True
    return np.flatnonzero(~held), np.flatnonzero(held)


def finetune(
    classifier: PyTorchClassifier,
    x: np.ndarray,
    labels: np.ndarray,
    max_epochs: int,
    recipe: Recipe,
    seed: int = 0,
    patience: int | None = None,
    validation_fraction: float = 0.1,
    progress: bool = False,
    monitor: Callable[[int], None] | None = None,
) -> FinetuneRecord:
    """Train ``classifier`` in place on ``(x, labels)``; pruning masks hold throughout.

    :param patience: Stop after this many epochs without a better validation accuracy and
        keep the best epoch's weights; ``None`` trains ``max_epochs`` on all of ``x``.
    :param validation_fraction: Share of ``x`` held out (seeded) for early stopping.
    :param monitor: Called with the number of finished epochs after each epoch.
    """
    module = ClassifierModule(classifier)
    device = torch.device(classifier.device)
    if patience is None:
        data = TensorDataset(torch.from_numpy(x), torch.from_numpy(labels))
        train_model(module, data, max_epochs, recipe, seed, device, progress, "fine-tune", monitor)
        return FinetuneRecord(max_epochs, max_epochs)
    train, held = validation_split(len(x), validation_fraction, seed)
    validation = TensorDataset(torch.from_numpy(x[held]), torch.from_numpy(labels[held]))
    stopper = EarlyStopping(classifier.model, patience)
    stopper.update(0, evaluate_accuracy(module, validation, device=device))

    def after_epoch(epoch: int) -> bool:
        if monitor is not None:
            monitor(epoch)
        return stopper.update(epoch, evaluate_accuracy(module, validation, device=device))

    data = TensorDataset(torch.from_numpy(x[train]), torch.from_numpy(labels[train]))
    losses = train_model(module, data, max_epochs, recipe, seed, device, progress, "fine-tune", after_epoch)
    stopper.restore()
    return FinetuneRecord(len(losses), stopper.best_epoch, stopper.scores)
