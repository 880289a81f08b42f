"""GAP as a ``torch.nn.utils.prune`` method, composable with ``prune.global_unstructured``."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import prune

from gap_art.pruning.selection import select_removed


class HighestScoreUnstructured(prune.BasePruningMethod):
    """Remove the entries with the *highest* importance score (GAP's direction).

    ``prune.L1Unstructured`` removes the lowest scores; this is its mirror image for
    importance scores where high means "most useful to the adversarial examples".
    Ties at the threshold are broken by ``seed``.

    :param amount: Fraction (float in [0, 1]) or number (int) of entries to remove.
    :param seed: Seed of the tie-breaking.
    """

    PRUNING_TYPE = "unstructured"

    def __init__(self, amount: int | float, seed: int = 0) -> None:
        prune._validate_pruning_amount_init(amount)
        self.amount = amount
        self.seed = seed

    def compute_mask(self, t: torch.Tensor, default_mask: torch.Tensor) -> torch.Tensor:
        n_remove = prune._compute_nparams_toprune(self.amount, t.nelement())
        prune._validate_pruning_amount(n_remove, t.nelement())
        generator = torch.Generator().manual_seed(self.seed)
        removed = select_removed(t.detach().flatten(), n_remove, largest=True, generator=generator)
        mask = default_mask.clone(memory_format=torch.contiguous_format)
        mask.view(-1)[removed] = 0
        return mask

    @classmethod
    def apply(  # type: ignore[override]
        cls,
        module: nn.Module,
        name: str,
        amount: int | float,
        seed: int = 0,
        importance_scores: torch.Tensor | None = None,
    ) -> HighestScoreUnstructured:
        return super().apply(module, name, amount=amount, seed=seed, importance_scores=importance_scores)


GreedyAdversarialUnstructured = HighestScoreUnstructured
"""GAP's pruning method: pass GAP scores as ``importance_scores``."""


def greedy_adversarial_unstructured(
    module: nn.Module,
    name: str,
    amount: int | float,
    importance_scores: torch.Tensor,
    seed: int = 0,
) -> nn.Module:
    """Prune ``module.name`` by removing its ``amount`` highest GAP scores.

    The mirror of ``prune.l1_unstructured``.

    For a global ranking across layers use ``prune.global_unstructured(parameters,
    pruning_method=GreedyAdversarialUnstructured, importance_scores=..., amount=...)``.
    """
    HighestScoreUnstructured.apply(module, name, amount, seed=seed, importance_scores=importance_scores)
    return module
