"""VMI-FGSM (Wang and He 2021): momentum iterative FGSM whose gradient is tuned by its variance
over a neighbourhood of the current example, made for transfer."""

from __future__ import annotations

import torchattacks
from art.attacks.attack import EvasionAttack
from art.estimators.classification import PyTorchClassifier
from torch import nn

from gap_art.attacks.base import AttackRecipe, AttackSettings, register, torchattacks_only


@register("vmifgsm")
class VMIFGSM(AttackRecipe):
    description = (
        "VMI-FGSM: variance-tuned momentum iterative FGSM (decay 1.0), a transfer attack (torchattacks)"
    )
    in_art = False
    extras = {"decay": 1.0}

    def torchattacks(self, module: nn.Module, s: AttackSettings) -> torchattacks.attack.Attack:
        return torchattacks.VMIFGSM(
            module, eps=s.eps, alpha=s.eps_step, steps=s.steps, decay=s.extras["decay"]
        )

    def art(self, classifier: PyTorchClassifier, s: AttackSettings) -> EvasionAttack:
        raise torchattacks_only("vmifgsm")
