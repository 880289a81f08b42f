"""PGD with restarts: twice the steps from several random starts, the best kept per example."""

from __future__ import annotations

from dataclasses import replace

import torchattacks
from art.attacks import evasion
from art.attacks.attack import EvasionAttack
from art.estimators.classification import PyTorchClassifier
from torch import nn

from gap_art.attacks.base import AttackRecipe, AttackSettings, art_linf_iterative, register


@register("pgd-restarts")
class PGDRestarts(AttackRecipe):
    description = "PGD with twice the steps from `restarts` random starts (default 5)"
    extras = {"restarts": 5}

    def torchattacks(self, module: nn.Module, s: AttackSettings) -> torchattacks.attack.Attack:
        runs = [
            torchattacks.PGD(module, eps=s.eps, alpha=s.eps_step, steps=2 * s.steps)
            for _ in range(s.extras["restarts"])
        ]
        return torchattacks.MultiAttack(runs)  # keeps, per example, the first run that succeeds

    def art(self, classifier: PyTorchClassifier, s: AttackSettings) -> EvasionAttack:
        doubled = replace(s, steps=2 * s.steps)
        starts = s.extras["restarts"]
        return art_linf_iterative(
            evasion.ProjectedGradientDescent, classifier, doubled, num_random_init=starts
        )
