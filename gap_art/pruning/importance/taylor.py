"""First-order Taylor pruning on clean data: remove the weights whose removal changes the
clean loss least."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from gap_art.pruning.importance.base import Importance, ScoringInputs, register
from gap_art.pruning.importance.gradients import accumulate_gradients, require_model
from gap_art.pruning.targets import Target


def taylor_scores(targets: Sequence[Target], gradients: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """``|w * g|``, ``g`` the clean-loss gradient; Taylor pruning removes the smallest."""
    return [(getattr(m, n).detach() * g).abs() for (m, n), g in zip(targets, gradients, strict=True)]


@register("taylor")
class TaylorImportance(Importance):
    description = "remove the smallest |w x g|, g the clean-loss gradient"
    needs_labels = True
    needs_data = True
    needs_gradients = True

    def score(self, inputs: ScoringInputs) -> list[torch.Tensor]:
        model = require_model(inputs.model, self.name)
        return taylor_scores(inputs.targets, accumulate_gradients(model, inputs.targets, inputs.batches))
