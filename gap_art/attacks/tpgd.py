"""TPGD (Zhang et al. 2019, TRADES): L-inf PGD that maximises the KL divergence of the
model's prediction on the example from its prediction on the clean input, TRADES' inner
attack. It reads no labels, so it never leaks them into a hardening that trains on it."""

from __future__ import annotations

import torchattacks
from torch import nn

from gap_art.attacks.base import AttackSettings, TorchattacksOnlyRecipe, register


@register("tpgd")
class TPGD(TorchattacksOnlyRecipe):
    description = (
        "TPGD: L-inf PGD on the KL divergence from the clean prediction, TRADES' inner attack (torchattacks)"
    )

    def torchattacks(self, module: nn.Module, s: AttackSettings) -> torchattacks.attack.Attack:
        return torchattacks.TPGD(module, eps=s.eps, alpha=s.eps_step, steps=s.steps)
