"""DI-FGSM (Xie et al. 2019): iterative FGSM on randomly resized and padded inputs, made for
transfer: the input diversity keeps the examples from fitting the source's quirks."""

from __future__ import annotations

import torchattacks
from torch import nn

from gap_art.attacks.base import AttackSettings, TorchattacksOnlyRecipe, register


@register("difgsm")
class DIFGSM(TorchattacksOnlyRecipe):
    description = "DI-FGSM: iterative FGSM on randomly resized inputs, a transfer attack (torchattacks)"
    extras = {"decay": 0.0}

    def torchattacks(self, module: nn.Module, s: AttackSettings) -> torchattacks.attack.Attack:
        return torchattacks.DIFGSM(
            module, eps=s.eps, alpha=s.eps_step, steps=s.steps, decay=s.extras["decay"]
        )
