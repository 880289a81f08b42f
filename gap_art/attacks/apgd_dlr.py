"""Auto-PGD on the DLR loss (Croce and Hein 2020): PGD with an adaptive step on a margin loss,
which does not stall where cross-entropy PGD saturates; the white-box attack of AutoAttack
that needs no target class."""

from __future__ import annotations

import numpy as np
import torchattacks
from art.attacks import evasion
from art.attacks.attack import EvasionAttack
from art.estimators.classification import PyTorchClassifier
from torch import nn

from gap_art.attacks.base import AttackRecipe, AttackSettings, register


@register("apgd-dlr")
class APGDDLR(AttackRecipe):
    description = "Auto-PGD on the DLR margin loss, 50 steps from `restarts` random starts (default 3)"
    default_steps = 50
    follows_study_steps = False
    extras = {"restarts": 3}

    def torchattacks(self, module: nn.Module, s: AttackSettings) -> torchattacks.attack.Attack:
        seed = 0 if s.seed is None else s.seed
        return torchattacks.APGD(
            module,
            norm="Linf",
            eps=s.eps,
            steps=s.steps,
            n_restarts=s.extras["restarts"],
            seed=seed,
            loss="dlr",
        )

    def art(self, classifier: PyTorchClassifier, s: AttackSettings) -> EvasionAttack:
        return evasion.AutoProjectedGradientDescent(
            classifier, norm=np.inf, eps=s.eps, eps_step=s.eps_step, max_iter=s.steps,
            nb_random_init=s.extras["restarts"], batch_size=s.batch_size,
            loss_type="difference_logits_ratio", verbose=False,
        )  # fmt: skip
