"""Which tensors are prunable: the weights that a pruning method may remove."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

Target = tuple[nn.Module, str]
"""A prunable tensor: ``(module, name)``, as in ``torch.nn.utils.prune.global_unstructured``."""

PRUNABLE_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def prunable_parameters(model: nn.Module, parameters: Sequence[Target] | None = None) -> list[Target]:
    """The tensors to prune: the weights of Conv and Linear layers unless ``parameters`` is given.

    :raises ValueError: The model has no prunable weight, or a given pair names no tensor.
    """
    if parameters is None:
        layers: list[Target] = [(m, "weight") for m in model.modules() if isinstance(m, PRUNABLE_LAYERS)]
        if not layers:
            raise ValueError(
                f"model {type(model).__name__} has no prunable weights (no Conv or Linear layer); "
                "pass parameters=[(module, name), ...] to choose them"
            )
        return layers
    targets = list(parameters)
    if not targets:
        raise ValueError("parameters must name at least one (module, name) pair")
    owned = {id(m) for m in model.modules()}
    for module, name in targets:
        if id(module) not in owned or not isinstance(getattr(module, name, None), torch.Tensor):
            raise ValueError(f"parameters: ({type(module).__name__}, {name!r}) is not a tensor of the model")
    return targets


def target_names(model: nn.Module, targets: Sequence[Target]) -> list[str]:
    """``"<module path>.<name>"`` for each target, for reports and checkpoints."""
    paths = {id(m): p for p, m in model.named_modules()}
    return [f"{paths[id(m)]}.{name}".lstrip(".") for m, name in targets]
