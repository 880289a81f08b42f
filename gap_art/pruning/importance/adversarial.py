"""Greedy Adversarial Pruning's criteria: rate weights by the gradient of the loss on
adversarial examples crafted against the model, and remove the highest scores."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from gap_art.errors import ParameterError
from gap_art.pruning.importance.base import IMPORTANCE, Importance, ScoringInputs, names, register
from gap_art.pruning.importance.gradients import accumulate_gradients, require_model
from gap_art.pruning.targets import Target


def _signed_gradient(w: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    return g.clone()


def _signed_taylor(w: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    return w * g


def _absolute_gradient(w: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    return g.abs()


class AdversarialGradientImportance(Importance):
    """Base of GAP's criteria: the accumulated adversarial-loss gradient ``g`` of each weight,
    turned into a score by :meth:`from_gradients`; the highest scores are removed."""

    removes = "highest"
    needs_labels = True
    needs_data = True
    needs_gradients = True
    needs_attack = True

    def score(self, inputs: ScoringInputs) -> list[torch.Tensor]:
        if inputs.craft is None:
            raise ParameterError(f"criterion {self.name!r} scores adversarial examples: pass craft=")
        model = require_model(inputs.model, self.name)
        gradients = accumulate_gradients(
            model, inputs.targets, inputs.batches, inputs.craft, inputs.train_mode
        )
        return self.from_gradients(inputs.targets, gradients)

    combine = staticmethod(_signed_gradient)
    """``combine(w, g)``: the score of weights ``w`` with accumulated adversarial gradients ``g``."""

    def from_gradients(
        self, targets: Sequence[Target], gradients: Sequence[torch.Tensor]
    ) -> list[torch.Tensor]:
        """Scores from accumulated adversarial gradients."""
        return [
            type(self).combine(getattr(m, n).detach(), g)
            for (m, n), g in zip(targets, gradients, strict=True)
        ]


@register("gap-grad")
class GapGradImportance(AdversarialGradientImportance):
    description = "GAP: remove the largest signed adversarial gradient g (the paper's method)"


@register("gap-taylor")
class GapTaylorImportance(AdversarialGradientImportance):
    description = "GAP: remove the largest signed w x g (removals that lower the adversarial loss most)"
    combine = staticmethod(_signed_taylor)


@register("gap-abs_grad")
class GapAbsGradImportance(AdversarialGradientImportance):
    description = "GAP: remove the largest |g|"
    combine = staticmethod(_absolute_gradient)


GAP_PREFIX = "gap-"


def adversarial_criterion(criterion: str) -> str:
    """The registry name of a GAP criterion given as ``grad`` or ``gap-grad``.

    :raises ValueError: Not an adversarial criterion; the message lists them.
    """
    adversarial = names(adversarial=True)
    for name in (str(criterion), GAP_PREFIX + str(criterion)):  # "taylor" is also a clean baseline
        if name in adversarial:
            return name
    short = [n.removeprefix(GAP_PREFIX) for n in adversarial]
    raise ParameterError(f"criterion must be one of {short}, got {criterion!r}")


def gap_scores(
    targets: Sequence[Target], gradients: Sequence[torch.Tensor], criterion: str = "grad"
) -> list[torch.Tensor]:
    """GAP scores from accumulated adversarial gradients; the highest are removed.

    ``grad``: the signed gradient (the paper's main method); ``taylor``: signed ``w * g``
    (removing ``w`` changes the adversarial loss by about ``-w g``); ``abs_grad``: ``|g|``.
    """
    importance = IMPORTANCE.get(adversarial_criterion(criterion))()
    assert isinstance(importance, AdversarialGradientImportance)
    return importance.from_gradients(targets, gradients)
