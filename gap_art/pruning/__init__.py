"""Greedy Adversarial Pruning and irregular pruning on top of ``torch.nn.utils.prune``.

Scores (:mod:`~gap_art.pruning.scores`) say how to rate each weight; the selection
(:mod:`~gap_art.pruning.selection`) turns scores and a compression ratio into
``prune`` masks. :func:`prune_by_scores` joins the two for plain PyTorch users; the ART
defences in :mod:`gap_art.defences` build on it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils import prune

from gap_art.pruning.methods import (
    GreedyAdversarialUnstructured,
    HighestScoreUnstructured,
    greedy_adversarial_unstructured,
)
from gap_art.pruning.scores import (
    BASELINES,
    GAP_CRITERIA,
    accumulate_gradients,
    activation_scores,
    gap_scores,
    magnitude_scores,
    random_scores,
    taylor_scores,
)
from gap_art.pruning.selection import (
    SCOPES,
    CompressionReport,
    apply_masks,
    compute_masks,
    measure_compression,
    other_parameter_count,
    select_removed,
    weights_to_keep,
)
from gap_art.pruning.targets import Target, prunable_parameters


def prune_by_scores(
    model: nn.Module,
    scores: Sequence[torch.Tensor],
    compression: float,
    parameters: Sequence[Target] | None = None,
    scope: str = "global",
    largest: bool = False,
    seed: int = 0,
    basis: str = "prunable",
) -> CompressionReport:
    """Mask ``model`` in place to reach ``compression`` and report the ratio achieved.

    :param scores: One tensor per prunable tensor (see :func:`prunable_parameters`).
    :param largest: Remove the highest scores (GAP) instead of the lowest (baselines).
    :param basis: ``prunable`` (ratio over prunable weights) or ``model`` (the reference's:
        non-prunable parameters count as kept).
    """
    targets = prunable_parameters(model, parameters)
    n_other = other_parameter_count(model, targets) if basis == "model" else 0
    masks = compute_masks(targets, scores, compression, scope, largest, seed, basis, n_other)
    apply_masks(targets, masks)
    return measure_compression(model, targets)


def make_permanent(model: nn.Module) -> nn.Module:
    """``prune.remove`` every mask of ``model`` in place: zeros stay, the reparametrization goes."""
    for module in model.modules():
        for hook in list(module._forward_pre_hooks.values()):
            if isinstance(hook, prune.BasePruningMethod):
                prune.remove(module, hook._tensor_name)
    return model


def load_masked_state(model: nn.Module, state: dict[str, torch.Tensor]) -> nn.Module:
    """``model.load_state_dict(state)`` that first re-attaches a ``prune`` mask for every
    ``<name>_mask`` entry, so pruned state dicts load into a fresh model."""
    modules = dict(model.named_modules())
    for key, mask in state.items():
        if key.endswith("_mask"):
            module_path, _, tensor_name = key[: -len("_mask")].rpartition(".")
            prune.custom_from_mask(modules[module_path], tensor_name, mask)
    model.load_state_dict(state)
    return model


__all__ = [
    "BASELINES",
    "GAP_CRITERIA",
    "SCOPES",
    "CompressionReport",
    "GreedyAdversarialUnstructured",
    "HighestScoreUnstructured",
    "Target",
    "accumulate_gradients",
    "activation_scores",
    "apply_masks",
    "compute_masks",
    "gap_scores",
    "greedy_adversarial_unstructured",
    "load_masked_state",
    "magnitude_scores",
    "make_permanent",
    "measure_compression",
    "prunable_parameters",
    "prune_by_scores",
    "random_scores",
    "select_removed",
    "taylor_scores",
    "weights_to_keep",
]
