"""Pruning criteria ("importance"), one class per criterion, in one registry.

``get(name)`` gives a criterion, ``names()`` lists them, ``register(name)`` adds one (a
third-party package may also add one through the ``gap_art.importance`` entry-point group).
Every name here is a ``--methods`` name of ``gap-art bench`` and a ``method`` /
``criterion`` of the ART transformers in :mod:`gap_art.defences`.
"""

from gap_art.pruning.importance.activation import ActivationImportance, activation_scores
from gap_art.pruning.importance.adversarial import (
    AdversarialGradientImportance,
    adversarial_criterion,
    gap_scores,
)
from gap_art.pruning.importance.base import (
    IMPORTANCE,
    Importance,
    ScoringInputs,
    get,
    make_batches,
    names,
    register,
)
from gap_art.pruning.importance.gradients import accumulate_gradients
from gap_art.pruning.importance.magnitude import MagnitudeImportance, magnitude_scores
from gap_art.pruning.importance.random import RandomImportance, random_scores
from gap_art.pruning.importance.taylor import TaylorImportance, taylor_scores
from gap_art.registry import import_submodules

import_submodules(__name__, __path__)  # a criterion in a new module of this package registers itself

__all__ = [
    "IMPORTANCE",
    "ActivationImportance",
    "AdversarialGradientImportance",
    "Importance",
    "MagnitudeImportance",
    "RandomImportance",
    "ScoringInputs",
    "TaylorImportance",
    "accumulate_gradients",
    "activation_scores",
    "adversarial_criterion",
    "gap_scores",
    "get",
    "magnitude_scores",
    "make_batches",
    "names",
    "random_scores",
    "register",
    "taylor_scores",
]
