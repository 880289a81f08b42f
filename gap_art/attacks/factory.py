"""``make_attack``: a registered attack by name (or a ready instance) on an ART classifier.

The clip range (:func:`clip_range`) is computed here and nowhere else; an
:class:`~gap_art.settings.AttackSpec` becomes an attack in :func:`build_attack`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import torchattacks
from art.attacks.attack import EvasionAttack
from art.estimators.classification import PyTorchClassifier

from gap_art.attacks.base import (
    ATTACKS,
    ARTAttack,
    AttackAdapter,
    AttackSettings,
    TorchattacksAttack,
    UnitRangeModule,
    check_backend,
)
from gap_art.classifiers import ClassifierModule, check_differentiable_classifier, require_gradients
from gap_art.errors import ParameterError, ParameterTypeError
from gap_art.settings import BACKENDS, AttackSpec
from gap_art.validation import check_choice, check_int


def clip_range(classifier: Any) -> tuple[float, float]:
    """The scalar ``(low, high)`` input range of an ART classifier.

    :raises ValueError: No ``clip_values``, or per-feature ones.
    """
    clip = getattr(classifier, "clip_values", None)
    if clip is None:
        raise ParameterError(
            "classifier has no clip_values: pass the valid input range to the ART classifier, e.g. "
            "PyTorchClassifier(..., clip_values=(0.0, 1.0)), so that it can be attacked"
        )
    low, high = np.asarray(clip[0]), np.asarray(clip[1])
    if low.size != 1 or high.size != 1:
        raise ParameterError("per-feature clip_values are not supported; use scalar (min, max)")
    return float(low), float(high)


def attack_names() -> list[str]:
    """Every registered attack name."""
    return ATTACKS.names()


def make_attack(
    attack: str | AttackSpec | torchattacks.attack.Attack | EvasionAttack | AttackAdapter,
    classifier: Any,
    backend: str | None = None,
    eps: float | None = None,
    eps_step: float | None = None,
    max_iter: int | None = None,
    random_start: bool = True,
    batch_size: int = 128,
    seed: int | None = 0,
    **kwargs: Any,
) -> AttackAdapter:
    """Build an attack on ``classifier`` from an :class:`~gap_art.settings.AttackSpec`, by
    name, or adapt a ready attack instance.

    :param attack: An :class:`~gap_art.settings.AttackSpec` (the other settings are then
        ignored), a registered name (``fgsm``, ``pgd`` (L-inf), ``cw`` (L2), ``mifgsm``,
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
    :param kwargs: The attack's own settings (:attr:`AttackSpec.EXTRAS
        <gap_art.settings.AttackSpec.EXTRAS>`): ``c``, ``kappa``, ``lr`` for CW; ``decay`` for
        MI-FGSM; ``restarts`` for ``pgd-restarts``; ``version`` for AutoAttack.
    :raises GradientFreeError: ``classifier`` is an int8 model (craft on a surrogate).
    """
    if isinstance(attack, str):
        if max_iter is not None:
            check_int(max_iter, "max_iter", 1)
        unknown = sorted(set(kwargs) - set(AttackSpec.EXTRAS))
        if unknown:
            raise ParameterError(
                f"unknown settings {unknown} for attack {attack!r}; allowed: {recipe_extras(attack)}"
            )
        attack = AttackSpec(
            attack, backend, eps, eps_step, max_iter, random_start, batch_size, seed, **kwargs
        )
    if isinstance(attack, AttackSpec):
        return build_attack(attack, classifier)
    backend = _backend(classifier, backend, attack)
    if isinstance(attack, AttackAdapter):
        return attack
    if isinstance(attack, torchattacks.attack.Attack):
        return TorchattacksAttack(classifier, attack, batch_size=batch_size, seed=seed)
    if isinstance(attack, EvasionAttack):
        return ARTAttack(classifier, attack, batch_size=batch_size, seed=seed)
    raise ParameterTypeError(
        f"attack must be a name in {attack_names()}, an AttackSpec, a torchattacks.Attack or an ART "
        f"EvasionAttack, got {type(attack).__name__}"
    )


def recipe_extras(attack: str) -> str:
    """The own settings a registered attack takes, for error messages."""
    return ", ".join(ATTACKS.get(attack, "attack").extras) or "none"


def _backend(classifier: Any, backend: str | None, attack: object = None) -> str:
    """The attack library for ``classifier``: the one asked for, else torchattacks for a
    ``PyTorchClassifier`` and ART for other frameworks."""
    check_differentiable_classifier(classifier, "classifier")
    require_gradients(classifier)
    pytorch = isinstance(classifier, PyTorchClassifier)
    backend = backend if backend is not None else ("torchattacks" if pytorch else "art")
    check_choice(backend, "backend", BACKENDS)
    if not pytorch and (backend == "torchattacks" or isinstance(attack, torchattacks.attack.Attack)):
        raise ParameterError(
            f"backend 'torchattacks' needs a PyTorchClassifier, got {type(classifier).__name__}: "
            "use backend='art' (ART's attacks work on any differentiable ART classifier)"
        )
    return backend


def build_attack(spec: AttackSpec, classifier: Any) -> AttackAdapter:
    """The attack ``spec`` describes, on ``classifier`` (the one place a named attack is built)."""
    backend = _backend(classifier, spec.backend)
    check_backend(spec.attack, backend)
    recipe = ATTACKS.get(spec.attack, "attack")()
    low, high = clip_range(classifier)
    span = high - low
    spec = spec.resolve(span)
    assert spec.eps is not None and spec.eps_step is not None
    steps = spec.steps if spec.steps is not None else recipe.default_steps
    given = spec.extras()
    unknown = sorted(set(given) - set(recipe.extras))
    if unknown:
        raise ParameterError(
            f"unknown settings {unknown} for attack {spec.attack!r}; allowed: {recipe_extras(spec.attack)}"
        )
    settings = AttackSettings(
        spec.eps,
        spec.eps_step,
        steps,
        spec.random_start,
        spec.batch_size,
        spec.seed,
        classifier.nb_classes,
        {**recipe.extras, **given},
    )
    if backend == "art":
        return ARTAttack(
            classifier, recipe.art(classifier, settings), spec.attack, spec.batch_size, spec.seed
        )
    module = UnitRangeModule(ClassifierModule(classifier), low, high, recipe.bfloat16)  # exact for (0, 1)
    unit = replace(settings, eps=spec.eps / span, eps_step=spec.eps_step / span)
    built = recipe.torchattacks(module, unit)
    return TorchattacksAttack(classifier, built, spec.attack, spec.batch_size, spec.seed, (low, high))
