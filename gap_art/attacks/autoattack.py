"""AutoAttack (Croce and Hein 2020): a parameter-free ensemble, for white-box runs."""

from __future__ import annotations

import numpy as np
import torchattacks
from art.attacks import evasion
from art.attacks.attack import EvasionAttack
from art.estimators.classification import PyTorchClassifier
from torch import nn

from gap_art.attacks.base import AttackRecipe, AttackSettings, register


@register("autoattack")
class AutoAttack(AttackRecipe):
    description = "AutoAttack, L-inf (slow: for white-box runs)"
    extras = {"version": "standard"}

    def torchattacks(self, module: nn.Module, s: AttackSettings) -> torchattacks.attack.Attack:
        return torchattacks.AutoAttack(
            module, norm="Linf", eps=s.eps, version=s.extras["version"], n_classes=s.nb_classes, seed=s.seed
        )

    def art(self, classifier: PyTorchClassifier, s: AttackSettings) -> EvasionAttack:
        return evasion.AutoAttack(
            classifier, norm=np.inf, eps=s.eps, eps_step=s.eps_step, batch_size=s.batch_size
        )
