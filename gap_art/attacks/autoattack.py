"""AutoAttack (Croce and Hein 2020): a parameter-free ensemble, for white-box runs. On torchattacks
it is the reference's ``standard`` version (APGD-CE, APGD-T, FAB-T and Square with 5,000
queries, one restart each; ``version`` picks another); on ART, ART's own ensemble, several times
slower on CPU (``benchmarks/attack_backends.py --attacks autoattack``)."""

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
            classifier,
            norm=np.inf,
            eps=s.eps,
            eps_step=s.eps_step,
            attacks=_art_default_attacks(classifier, s),
            batch_size=s.batch_size,
        )


def _art_default_attacks(classifier: PyTorchClassifier, s: AttackSettings) -> list[EvasionAttack]:
    """ART's own AutoAttack ensemble (its defaults in ART 1.17 to 1.20: APGD on cross-entropy and
    on the DLR loss, 100 steps and 5 restarts each, DeepFool, and the Square attack), built
    without their progress bars, which would tear a study's."""
    apgd = {"norm": np.inf, "eps": s.eps, "eps_step": s.eps_step, "max_iter": 100, "targeted": False}
    quiet = {"batch_size": s.batch_size, "verbose": False}
    return [
        evasion.AutoProjectedGradientDescent(
            classifier, **apgd, nb_random_init=5, loss_type="cross_entropy", **quiet
        ),
        evasion.AutoProjectedGradientDescent(
            classifier, **apgd, nb_random_init=5, loss_type="difference_logits_ratio", **quiet
        ),
        evasion.DeepFool(classifier, max_iter=100, epsilon=1e-3, nb_grads=10, **quiet),
        evasion.SquareAttack(
            classifier, norm=np.inf, max_iter=5000, eps=s.eps, p_init=0.8, nb_restarts=5, verbose=False
        ),
    ]
