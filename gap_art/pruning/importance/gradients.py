"""Accumulated loss gradients of the prunable weights: what Taylor and GAP scores are made of."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from gap_art.errors import ParameterError
from gap_art.pruning.importance.base import Batches, Craft
from gap_art.pruning.masks import trainable_tensor
from gap_art.pruning.targets import Target


def accumulate_gradients(
    model: nn.Module,
    targets: Sequence[Target],
    batches: Batches,
    craft: Craft | None = None,
    train_mode: bool = False,
) -> list[torch.Tensor]:
    """Sum over batches of the gradient of the mean cross-entropy loss for each target.

    :param model: Maps inputs to logits (a :class:`~gap_art.classifiers.ClassifierModule`
        when the classifier preprocesses its inputs).
    :param craft: ``craft(x, y) -> x_adv``; the loss is taken on its output (GAP). ``None``
        takes the loss on the clean batch (clean Taylor pruning).
    :param train_mode: Run the loss pass in training mode (batch statistics, dropout), as
        the reference implementation does; the default is eval mode, as deployed.
    """
    leaves = [trainable_tensor(m, n) for m, n in targets]
    device = leaves[0].device
    totals = [torch.zeros_like(leaf) for leaf in leaves]
    was_training = model.training
    seen = 0
    try:
        for x, y in batches:
            x, y = x.to(device), y.to(device)
            model.eval()
            inputs = craft(x, y).to(device) if craft is not None else x
            model.train(train_mode)
            loss = F.cross_entropy(model(inputs), y)
            grads = torch.autograd.grad(loss, leaves, allow_unused=True)
            for total, grad in zip(totals, grads, strict=True):
                if grad is not None:
                    total += grad.detach()
            seen += len(x)
    finally:
        model.train(was_training)
    if seen == 0:
        raise ParameterError("calibration data is empty: pass at least one labelled example")
    return totals


def require_model(inputs_model: nn.Module | None, criterion: str) -> nn.Module:
    """The model of the scoring inputs, or a clear error for a criterion that runs it."""
    if inputs_model is None:
        raise ParameterError(f"criterion {criterion!r} runs the model on calibration data: pass model=")
    return inputs_model
