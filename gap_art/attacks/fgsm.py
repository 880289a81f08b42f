"""FGSM (Goodfellow et al. 2015): one signed-gradient step of size eps."""

from __future__ import annotations

import numpy as np
import torchattacks
from art.attacks import evasion
from art.attacks.attack import EvasionAttack
from art.estimators.classification import PyTorchClassifier
from torch import nn

from gap_art.attacks.base import AttackRecipe, AttackSettings, register


@register("fgsm")
class FGSM(AttackRecipe):
    description = "fast gradient sign method: one L-inf step"
    iterative = False

    def torchattacks(self, module: nn.Module, s: AttackSettings) -> torchattacks.attack.Attack:
        return torchattacks.FGSM(module, eps=s.eps)

    def art(self, classifier: PyTorchClassifier, s: AttackSettings) -> EvasionAttack:
        return evasion.FastGradientMethod(classifier, norm=np.inf, eps=s.eps, batch_size=s.batch_size)
