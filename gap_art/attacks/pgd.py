"""PGD (Madry et al. 2018): iterated signed-gradient steps projected onto the L-inf ball."""

from __future__ import annotations

import torchattacks
from art.attacks import evasion
from art.attacks.attack import EvasionAttack
from art.estimators.classification import PyTorchClassifier
from torch import nn

from gap_art.attacks.base import AttackRecipe, AttackSettings, art_linf_iterative, register


@register("pgd")
class PGD(AttackRecipe):
    description = "projected gradient descent, L-inf, random start"

    def torchattacks(self, module: nn.Module, s: AttackSettings) -> torchattacks.attack.Attack:
        return torchattacks.PGD(
            module, eps=s.eps, alpha=s.eps_step, steps=s.steps, random_start=s.random_start
        )

    def art(self, classifier: PyTorchClassifier, s: AttackSettings) -> EvasionAttack:
        starts = int(s.random_start)
        return art_linf_iterative(evasion.ProjectedGradientDescent, classifier, s, num_random_init=starts)
