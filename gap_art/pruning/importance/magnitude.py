"""Magnitude pruning: remove the smallest weights."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from gap_art.pruning.importance.base import Importance, ScoringInputs, register
from gap_art.pruning.targets import Target


def magnitude_scores(targets: Sequence[Target]) -> list[torch.Tensor]:
    """``|w|``: magnitude pruning removes the smallest."""
    return [getattr(m, n).detach().abs() for m, n in targets]


@register("magnitude")
class MagnitudeImportance(Importance):
    description = "remove the smallest |w|"

    def score(self, inputs: ScoringInputs) -> list[torch.Tensor]:
        return magnitude_scores(inputs.targets)
