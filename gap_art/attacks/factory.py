"""``make_attack``: a registered attack by name (or a ready instance) on an ART classifier.

The clip range (:func:`clip_range`) and the step default (:func:`default_eps_step`) are
computed here and nowhere else.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torchattacks
from art.attacks.attack import EvasionAttack
from art.estimators.classification import PyTorchClassifier
from torch import nn

from gap_art.attacks.base import (
    ATTACKS,
    BACKENDS,
    ARTAttack,
    AttackAdapter,
    AttackSettings,
    TorchattacksAttack,
    UnitRangeModule,
)
from gap_art.classifiers import ClassifierModule, check_differentiable_classifier, require_gradients
from gap_art.validation import check_choice, check_int, check_range


def clip_range(classifier: Any) -> tuple[float, float]:
    """The scalar ``(low, high)`` input range of an ART classifier.

    :raises ValueError: No ``clip_values``, or per-feature ones.
    """
    clip = getattr(classifier, "clip_values", None)
    if clip is None:
        raise ValueError(
            "classifier has no clip_values: pass the valid input range to the ART classifier, e.g. "
            "PyTorchClassifier(..., clip_values=(0.0, 1.0)), so that it can be attacked"
        )
    low, high = np.asarray(clip[0]), np.asarray(clip[1])
    if low.size != 1 or high.size != 1:
        raise ValueError("per-feature clip_values are not supported; use scalar (min, max)")
    return float(low), float(high)


def default_eps_step(eps: float) -> float:
    """The step of iterative attacks when none is given: a quarter of the budget."""
    return eps / 4


def attack_names() -> list[str]:
    """Every registered attack name."""
    return ATTACKS.names()


def make_attack(
    attack: str | torchattacks.attack.Attack | EvasionAttack | AttackAdapter,
    classifier: PyTorchClassifier,
    backend: str | None = None,
    eps: float | None = None,
    eps_step: float | None = None,
    max_iter: int | None = None,
    random_start: bool = True,
    batch_size: int = 128,
    seed: int | None = 0,
    **kwargs: Any,
) -> AttackAdapter:
    """Build an attack on ``classifier`` by name, or adapt a ready attack instance.

    :param attack: A registered name (``fgsm``, ``pgd`` (L-inf), ``cw`` (L2), ``mifgsm``,
        ``pgd-restarts``, ``autoattack``, see :func:`attack_names`), or a
        ``torchattacks.Attack`` / ART ``EvasionAttack`` instance.
    :param classifier: The ART classifier to craft on: a ``PyTorchClassifier``, or any
        differentiable ART classifier (TensorFlow, JAX, scikit-learn logistic regression, ...)
        with the ART backend.
    :param backend: ``torchattacks`` or ``art``; default: torchattacks for a
        ``PyTorchClassifier``, ART for other frameworks.
    :param eps: L-inf budget in the classifier's input units (default 8/255 of the range).
    :param eps_step: Step size of iterative attacks (default ``eps / 4``).
    :param max_iter: Iterations (default 10; 50 for ``cw``).
    :param random_start: PGD starts at a random point of the eps-ball.
    :param kwargs: The attack's own settings (its recipe's ``extras``): ``c``, ``kappa``,
        ``lr`` for CW; ``decay`` for MI-FGSM; ``restarts`` for ``pgd-restarts``; ``version``
        for AutoAttack.
    :raises GradientFreeError: ``classifier`` is an int8 model (craft on a surrogate).
    """
    check_differentiable_classifier(classifier, "classifier")
    require_gradients(classifier)
    pytorch = isinstance(classifier, PyTorchClassifier)
    backend = backend if backend is not None else ("torchattacks" if pytorch else "art")
    check_choice(backend, "backend", BACKENDS)
    if not pytorch and (backend == "torchattacks" or isinstance(attack, torchattacks.attack.Attack)):
        raise ValueError(
            f"backend 'torchattacks' needs a PyTorchClassifier, got {type(classifier).__name__}: "
            "use backend='art' (ART's attacks work on any differentiable ART classifier)"
        )
    if isinstance(attack, AttackAdapter):
        return attack
    if isinstance(attack, torchattacks.attack.Attack):
        return TorchattacksAttack(classifier, attack, batch_size=batch_size, seed=seed)
    if isinstance(attack, EvasionAttack):
        return ARTAttack(classifier, attack, batch_size=batch_size, seed=seed)
    if not isinstance(attack, str):
        raise TypeError(
            f"attack must be a name in {attack_names()}, a torchattacks.Attack or an ART "
            f"EvasionAttack, got {type(attack).__name__}"
        )
    recipe = ATTACKS.get(attack, "attack")()
    low, high = clip_range(classifier)
    span = high - low
    eps = check_range(span * 8 / 255 if eps is None else eps, "eps", 0.0, span)
    eps_step = check_range(
        default_eps_step(eps) if eps_step is None else eps_step, "eps_step", 0.0, span, True
    )
    steps = check_int(max_iter if max_iter is not None else recipe.default_steps, "max_iter", 1)
    unknown = sorted(set(kwargs) - set(recipe.extras))
    if unknown:
        allowed = ", ".join(recipe.extras) or "none"
        raise ValueError(f"unknown settings {unknown} for attack {attack!r}; allowed: {allowed}")
    if "restarts" in kwargs:
        check_int(kwargs["restarts"], "restarts", 1)
    settings = AttackSettings(
        eps,
        eps_step,
        steps,
        random_start,
        batch_size,
        seed,
        classifier.nb_classes,
        {**recipe.extras, **kwargs},
    )
    if backend == "art":
        return ARTAttack(classifier, recipe.art(classifier, settings), attack, batch_size, seed)
    model = ClassifierModule(classifier)
    module: nn.Module = model if (low, high) == (0.0, 1.0) else UnitRangeModule(model, low, high)
    unit = AttackSettings(
        eps / span,
        eps_step / span,
        steps,
        random_start,
        batch_size,
        seed,
        settings.nb_classes,
        settings.extras,
    )
    built = recipe.torchattacks(module, unit)
    return TorchattacksAttack(classifier, built, attack, batch_size, seed, (low, high))
