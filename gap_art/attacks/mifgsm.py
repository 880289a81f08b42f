"""MI-FGSM (Dong et al. 2018): momentum iterative FGSM, made for transfer."""

from __future__ import annotations

import torchattacks
from art.attacks import evasion
from art.attacks.attack import EvasionAttack
from art.estimators.classification import PyTorchClassifier
from torch import nn

from gap_art.attacks.base import AttackRecipe, AttackSettings, art_linf_iterative, register


@register("mifgsm")
class MIFGSM(AttackRecipe):
    description = "momentum iterative FGSM (decay 1.0), a stronger transfer attack"
    extras = {"decay": 1.0}

    def torchattacks(self, module: nn.Module, s: AttackSettings) -> torchattacks.attack.Attack:
        decay = s.extras["decay"]
        return torchattacks.MIFGSM(module, eps=s.eps, alpha=s.eps_step, steps=s.steps, decay=decay)

    def art(self, classifier: PyTorchClassifier, s: AttackSettings) -> EvasionAttack:
        return art_linf_iterative(evasion.MomentumIterativeMethod, classifier, s, decay=s.extras["decay"])
