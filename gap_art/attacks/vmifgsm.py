"""VMI-FGSM (Wang and He 2021): momentum iterative FGSM whose gradient is tuned by its variance
over a neighbourhood of the current example, made for transfer."""

from __future__ import annotations

import torchattacks
from torch import nn

from gap_art.attacks.base import AttackSettings, TorchattacksOnlyRecipe, register


@register("vmifgsm")
class VMIFGSM(TorchattacksOnlyRecipe):
    description = (
        "VMI-FGSM: variance-tuned momentum iterative FGSM (decay 1.0), a transfer attack (torchattacks)"
    )
    extras = {"decay": 1.0}

    def torchattacks(self, module: nn.Module, s: AttackSettings) -> torchattacks.attack.Attack:
        return torchattacks.VMIFGSM(
            module, eps=s.eps, alpha=s.eps_step, steps=s.steps, decay=s.extras["decay"]
        )
