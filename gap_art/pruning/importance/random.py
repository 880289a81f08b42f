"""Random pruning: the baseline that any criterion must beat at equal clean accuracy."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from gap_art.pruning.importance.base import Importance, ScoringInputs, register
from gap_art.pruning.targets import Target


def random_scores(targets: Sequence[Target], seed: int = 0) -> list[torch.Tensor]:
    """Uniform random scores from a seeded generator: random pruning."""
    generator = torch.Generator().manual_seed(seed)
    return [torch.rand(getattr(m, n).shape, generator=generator).to(getattr(m, n).device) for m, n in targets]


@register("random")
class RandomImportance(Importance):
    description = "remove a seeded random fraction of the weights"

    def score(self, inputs: ScoringInputs) -> list[torch.Tensor]:
        return random_scores(inputs.targets, inputs.seed)
