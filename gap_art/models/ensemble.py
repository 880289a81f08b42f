"""An ensemble of models as one module: the average of their logits."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from gap_art.errors import ParameterError


class EnsembleModule(nn.Module):
    """Averages the logits of ``models``: a standard surrogate for transfer attacks, whose
    examples must fool every member at once."""

    def __init__(self, models: Sequence[nn.Module]) -> None:
        super().__init__()
        if not models:
            raise ParameterError("models must hold at least one model")
        self.members = nn.ModuleList(models)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([member(x) for member in self.members]).mean(dim=0)
