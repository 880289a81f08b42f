"""Activation-weighted magnitude pruning: ``|w|`` times the size of the input it multiplies."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from gap_art.errors import ParameterError
from gap_art.pruning.importance.base import Batches, Importance, ScoringInputs, register
from gap_art.pruning.importance.gradients import require_model
from gap_art.pruning.masks import trainable_tensor
from gap_art.pruning.targets import Target

CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


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
        if not isinstance(module, (nn.Linear, *CONVS)):
            raise ParameterError(f"activation scores need Conv or Linear layers, got {type(module).__name__}")
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
        raise ParameterError("calibration data is empty: pass at least one example")
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
    assert isinstance(module, CONVS)
    weight, groups = module.weight, module.groups
    per_group = activation.view(groups, -1)
    per_output = per_group.repeat_interleave(weight.shape[0] // groups, dim=0)
    return per_output.view(weight.shape[0], weight.shape[1], *([1] * (weight.dim() - 2)))


@register("activation")
class ActivationImportance(Importance):
    description = "remove the smallest |w| x mean |input activation|"
    needs_data = True

    def score(self, inputs: ScoringInputs) -> list[torch.Tensor]:
        return activation_scores(require_model(inputs.model, self.name), inputs.targets, inputs.batches)
