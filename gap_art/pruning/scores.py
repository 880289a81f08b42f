"""Importance scores: how to rate each prunable weight. Small, pure functions.

Every function returns one score tensor per target, shaped like the target. Which end of
the ranking is removed is the pruner's business (:mod:`gap_art.pruning.selection`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from gap_art.pruning.targets import Target, trainable_tensor

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]
Craft = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

GAP_CRITERIA = ("grad", "taylor", "abs_grad")
BASELINES = ("random", "magnitude", "taylor", "activation")


def random_scores(targets: Sequence[Target], seed: int = 0) -> list[torch.Tensor]:
    """Uniform random scores from a seeded generator: random pruning."""
    generator = torch.Generator().manual_seed(seed)
    return [torch.rand(getattr(m, n).shape, generator=generator).to(getattr(m, n).device) for m, n in targets]


def magnitude_scores(targets: Sequence[Target]) -> list[torch.Tensor]:
    """``|w|``: magnitude pruning removes the smallest."""
    return [getattr(m, n).detach().abs() for m, n in targets]


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
        raise ValueError("calibration data is empty: pass at least one labelled example")
    return totals


def gap_scores(
    targets: Sequence[Target], gradients: Sequence[torch.Tensor], criterion: str = "grad"
) -> list[torch.Tensor]:
    """GAP scores from accumulated adversarial gradients; the highest are removed.

    ``grad``: the signed gradient (the paper's main method); ``taylor``: signed ``w * g``
    (removing ``w`` changes the adversarial loss by about ``-w g``); ``abs_grad``: ``|g|``.
    """
    if criterion == "grad":
        return [g.clone() for g in gradients]
    if criterion == "taylor":
        return [getattr(m, n).detach() * g for (m, n), g in zip(targets, gradients, strict=True)]
    if criterion == "abs_grad":
        return [g.abs() for g in gradients]
    raise ValueError(f"criterion must be one of {list(GAP_CRITERIA)}, got {criterion!r}")


def taylor_scores(targets: Sequence[Target], gradients: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """``|w * g|``, ``g`` the clean-loss gradient; Taylor pruning removes the smallest."""
    return [(getattr(m, n).detach() * g).abs() for (m, n), g in zip(targets, gradients, strict=True)]


def input_activation_magnitudes(
    model: nn.Module, targets: Sequence[Target], batches: Batches
) -> list[torch.Tensor]:
    """Mean ``|input|`` per input feature (Linear) or input channel (Conv) of each target layer."""
    sums: dict[int, torch.Tensor] = {}
    counts: dict[int, int] = {}

    def record(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        x = inputs[0].detach().abs()
        if isinstance(module, nn.Linear):
            rows = x.reshape(-1, x.shape[-1])  # Linear acts on the last dimension
        else:
            rows = x.flatten(2).mean(2)  # per example and input channel
        sums[id(module)] = sums.get(id(module), 0) + rows.sum(0)
        counts[id(module)] = counts.get(id(module), 0) + rows.shape[0]

    for module, _ in targets:
        if not isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            raise ValueError(f"activation scores need Conv or Linear layers, got {type(module).__name__}")
    handles = [module.register_forward_pre_hook(record) for module, _ in targets]
    was_training = model.training
    model.eval()
    device = trainable_tensor(*targets[0]).device
    try:
        with torch.no_grad():
            for x, _ in batches:
                model(x.to(device))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    if not counts:
        raise ValueError("calibration data is empty: pass at least one example")
    return [sums[id(m)] / counts[id(m)] for m, _ in targets]


def activation_scores(model: nn.Module, targets: Sequence[Target], batches: Batches) -> list[torch.Tensor]:
    """``|w|`` times the mean magnitude of the input activation it multiplies."""
    activations = input_activation_magnitudes(model, targets, batches)
    return [
        getattr(m, n).detach().abs() * _broadcast_to_weight(m, a)
        for (m, n), a in zip(targets, activations, strict=True)
    ]


def _broadcast_to_weight(module: nn.Module, activation: torch.Tensor) -> torch.Tensor:
    """Map per-input-channel magnitudes onto the weight layout (grouped convs included)."""
    if isinstance(module, nn.Linear):
        return activation.view(1, -1)
    assert isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d))
    weight, groups = module.weight, module.groups
    per_group = activation.view(groups, -1)
    per_output = per_group.repeat_interleave(weight.shape[0] // groups, dim=0)
    return per_output.view(weight.shape[0], weight.shape[1], *([1] * (weight.dim() - 2)))
