"""Transfer and white-box evaluation of ART classifiers, with honest, per-example metrics."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from art.estimators.classification import PyTorchClassifier

from gap_art.attacks import AttackAdapter, AttackSpec, make_attack
from gap_art.classifiers import check_differentiable_classifier, check_pytorch_classifier
from gap_art.errors import ParameterError, ParameterTypeError
from gap_art.evaluation.metrics import class_recall, proportion, topk_correct, wilson_interval
from gap_art.validation import check_inputs, check_labels

Logits = Callable[[Any, np.ndarray], np.ndarray]
"""How a classifier's logits on some inputs are obtained: ``logits(classifier, x)``."""

PREDICT_BATCH_SIZE = 256
"""Batch size of an evaluation's predictions (a memo of logits predicts with it too)."""


def _predictor(logits: Logits | None, batch_size: int) -> Logits:
    """``logits``, or ``classifier.predict`` in batches of ``batch_size``."""
    if logits is not None:
        return logits
    return lambda classifier, x: classifier.predict(x, batch_size=batch_size)


class _FlatResult:
    """``to_dict`` for result dataclasses: every interval becomes two flat keys; the
    per-example arrays stay out (they are for paired analyses, not for tables)."""

    def to_dict(self) -> dict[str, Any]:
        """A flat dict: every interval becomes ``<metric>_ci_low`` / ``<metric>_ci_high``."""
        data = asdict(self)  # type: ignore[call-overload]
        data.pop("per_example")
        for name, (low, high) in data.pop("intervals").items():
            data[f"{name}_ci_low"], data[f"{name}_ci_high"] = low, high
        return data


@dataclass
class TransferResult(_FlatResult):
    """What examples crafted on the source did to one target.

    Proportions are over the ``n`` examples, except ``transfer_success_rate`` (over the
    examples that fool the source and that the target gets right when clean). Each has a
    Wilson 95% interval in ``intervals``; ``None`` marks a metric that does not apply.
    ``class_recall``: the target's clean accuracy per class (a collapsed class explains
    "robustness" without any hardening), over ``class_support`` examples each.
    ``per_example`` holds boolean arrays over the ``n`` examples: ``clean`` and ``transfer``
    (the target correct), ``source_clean`` and ``source_adv`` (the source correct): the input
    of paired tests between targets evaluated on the same examples.
    """

    target: str
    attack: str
    n: int
    clean_accuracy: float
    transfer_accuracy: float
    source_clean_accuracy: float
    source_whitebox_accuracy: float
    transfer_success_rate: float | None
    n_success_base: int
    both_correct: float
    clean_top5: float | None
    transfer_top5: float | None
    linf_mean: float
    l2_mean: float
    linf_median: float
    l2_median: float
    class_recall: list[float | None] = field(default_factory=list)
    class_support: list[int] = field(default_factory=list)
    seed: int | None = None
    source: str = "source"
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    per_example: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)


@dataclass
class WhiteboxResult(_FlatResult):
    """A target attacked with full knowledge of itself (the attack runs on the target).

    ``per_example``: boolean arrays ``clean`` and ``adversarial`` (the target correct).
    """

    target: str
    attack: str
    n: int
    clean_accuracy: float
    adversarial_accuracy: float
    linf_mean: float
    l2_mean: float
    seed: int | None = None
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    per_example: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)


def _check_target(source: PyTorchClassifier, name: str, target: Any) -> None:
    """Any ART classifier that predicts will do as a target (PyTorch, int8, black-box, another
    framework): it is only queried, never differentiated."""
    if not callable(getattr(target, "predict", None)) or not hasattr(target, "nb_classes"):
        raise ParameterTypeError(
            f"targets[{name!r}] must be an ART classifier with predict() (e.g. a PyTorchClassifier or a "
            f"BlackBoxClassifier), got {type(target).__name__}"
        )
    if tuple(target.input_shape) != tuple(source.input_shape):
        raise ParameterError(
            f"target {name!r} takes input shape {tuple(target.input_shape)}, "
            f"the source takes {tuple(source.input_shape)}"
        )
    if target.nb_classes != source.nb_classes:
        raise ParameterError(
            f"target {name!r} has {target.nb_classes} classes, the source has {source.nb_classes}"
        )


def craft_examples(
    source: PyTorchClassifier,
    x: np.ndarray,
    y: np.ndarray,
    attack: Any = "pgd",
    progress: bool = False,
    **attack_kwargs: Any,
) -> np.ndarray:
    """Adversarial examples crafted on ``source`` (numpy in, numpy out).

    :param attack: A name (see :func:`gap_art.attacks.make_attack`), an
        :class:`~gap_art.settings.AttackSpec`, an attack instance or an
        :class:`~gap_art.attacks.AttackAdapter`.
    :param attack_kwargs: ``backend``, ``eps``, ``eps_step``, ``max_iter``, ``batch_size``,
        ``seed``, ... passed to :func:`~gap_art.attacks.make_attack`.
    """
    adapter = make_attack(attack, source, **attack_kwargs)
    return adapter.generate(x, y, progress=progress)


def _examples(
    crafter: Any,
    x: np.ndarray,
    y: np.ndarray,
    attack: Any,
    x_adv: np.ndarray | None,
    progress: bool,
    seed: int | None,
    attack_kwargs: dict[str, Any],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Checked inputs, their labels and their adversarial versions: ``x_adv`` if given (it
    must match ``x``), else crafted on ``crafter``."""
    x = check_inputs(x, tuple(crafter.input_shape))
    labels = check_labels(y, len(x), crafter.nb_classes)
    if x_adv is None:
        x_adv = craft_examples(crafter, x, labels, attack, progress=progress, seed=seed, **attack_kwargs)
    elif np.shape(x_adv) != x.shape:
        raise ParameterError(f"x_adv must have the shape of x {x.shape}, got {np.shape(x_adv)}")
    return x, labels, x_adv


def _perturbation(x: np.ndarray, x_adv: np.ndarray) -> tuple[float, float, float, float]:
    """Mean L-inf, mean L2, median L-inf and median L2 size of the perturbations."""
    delta = (x_adv - x).reshape(len(x), -1)
    linf, l2 = np.abs(delta).max(axis=1), np.linalg.norm(delta, axis=1)
    return float(linf.mean()), float(l2.mean()), float(np.median(linf)), float(np.median(l2))


def _attack_name(attack: Any) -> str:
    if isinstance(attack, str):
        return attack
    if isinstance(attack, AttackSpec):
        return attack.attack
    if isinstance(attack, AttackAdapter):
        return attack.name
    return type(attack).__name__


def evaluate_transfer(
    source: PyTorchClassifier,
    targets: Mapping[str, Any] | Any,
    x: np.ndarray,
    y: np.ndarray,
    attack: Any = "pgd",
    x_adv: np.ndarray | None = None,
    batch_size: int = PREDICT_BATCH_SIZE,
    progress: bool = True,
    seed: int | None = 0,
    source_name: str = "source",
    logits: Logits | None = None,
    **attack_kwargs: Any,
) -> list[TransferResult]:
    """Craft adversarial examples once on ``source`` and measure each target on them.

    :param source: The model the attacker holds: any differentiable ART classifier (a
        ``PyTorchClassifier``, or another framework's, attacked with ART's attacks).
    :param targets: ``{name: classifier}`` (pruned, int8, defended, or any ART classifier that
        answers ``predict``, such as a ``BlackBoxClassifier`` around a deployed model), or one.
    :param x: Clean inputs (numpy, the classifier's input shape).
    :param y: True labels, as indices or one-hot.
    :param attack: ``fgsm``, ``pgd``, ``cw``, ``mifgsm``, ``autoattack``, or an instance.
    :param x_adv: Examples already crafted on ``source`` from ``x`` (skips crafting).
    :param seed: Fixes the attack's random start: the same call twice gives equal numbers.
    :param source_name: Who crafts, recorded in each result (``dense``, ``independent``,
        ``replica``, ``ensemble``: the attacker's knowledge level).
    :param logits: How a classifier's logits are obtained (``classifier.predict`` in batches
        of ``batch_size`` by default); a study passes a memo, so that a model scores the same
        examples once however many cells read them.
    :param attack_kwargs: ``backend``, ``eps``, ``eps_step``, ``max_iter``, ... for
        :func:`~gap_art.attacks.make_attack`.
    :return: One :class:`TransferResult` per target, in order.
    """
    check_differentiable_classifier(source, "source")
    if not isinstance(targets, Mapping):
        targets = {"target": targets}
    if not targets:
        raise ParameterError("targets must name at least one classifier")
    for name, target in targets.items():
        _check_target(source, name, target)
    x, labels, x_adv = _examples(source, x, y, attack, x_adv, progress, seed, attack_kwargs)
    predict = _predictor(logits, batch_size)
    source_clean = predict(source, x).argmax(1) == labels
    source_adv = predict(source, x_adv).argmax(1) == labels
    shared = {
        "attack": _attack_name(attack),
        "n": len(labels),
        "source_clean": source_clean,
        "source_adv": source_adv,
        "perturbation": _perturbation(x, x_adv),
        "seed": seed,
        "source_name": source_name,
    }
    return [
        _transfer_result(name, target, x, x_adv, labels, predict, **shared)
        for name, target in targets.items()
    ]


def _transfer_result(
    name: str,
    target: Any,
    x: np.ndarray,
    x_adv: np.ndarray,
    labels: np.ndarray,
    predict: Logits,
    attack: str,
    n: int,
    source_clean: np.ndarray,
    source_adv: np.ndarray,
    perturbation: tuple[float, float, float, float],
    seed: int | None,
    source_name: str,
) -> TransferResult:
    clean_logits = predict(target, x)
    adv_logits = predict(target, x_adv)
    clean = clean_logits.argmax(1) == labels
    adv = adv_logits.argmax(1) == labels
    base = (~source_adv) & clean
    flags = {
        "clean_accuracy": clean,
        "transfer_accuracy": adv,
        "source_clean_accuracy": source_clean,
        "source_whitebox_accuracy": source_adv,
        "transfer_success_rate": ~adv[base],
        "both_correct": source_adv & adv,
    }
    label_only = bool(np.isin(clean_logits, (0.0, 1.0)).all())  # a black box answering one-hot labels
    if target.nb_classes >= 5 and not label_only:
        flags["clean_top5"] = topk_correct(clean_logits, labels, 5)
        flags["transfer_top5"] = topk_correct(adv_logits, labels, 5)
    values: dict[str, Any] = {"clean_top5": None, "transfer_top5": None}
    intervals = {}
    for key, value in flags.items():
        fraction, k, total = proportion(value)
        values[key] = None if math.isnan(fraction) else fraction
        intervals[key] = wilson_interval(k, total)
    return TransferResult(
        target=name,
        attack=attack,
        n=n,
        n_success_base=int(base.sum()),
        linf_mean=perturbation[0],
        l2_mean=perturbation[1],
        linf_median=perturbation[2],
        l2_median=perturbation[3],
        seed=seed,
        source=source_name,
        class_recall=class_recall(clean, labels, target.nb_classes),
        class_support=np.bincount(labels, minlength=target.nb_classes).tolist(),
        intervals=intervals,
        per_example={"clean": clean, "transfer": adv, "source_clean": source_clean, "source_adv": source_adv},
        **values,
    )


def evaluate_whitebox(
    target: PyTorchClassifier,
    x: np.ndarray,
    y: np.ndarray,
    attack: Any = "pgd",
    name: str = "target",
    batch_size: int = PREDICT_BATCH_SIZE,
    progress: bool = True,
    seed: int | None = 0,
    x_adv: np.ndarray | None = None,
    logits: Logits | None = None,
    **attack_kwargs: Any,
) -> WhiteboxResult:
    """Attack ``target`` with its own gradients: shows what pruning does *not* defend against.

    :param x_adv: Examples already crafted on ``target`` from ``x`` (skips crafting).
    :param logits: How the target's logits are obtained (see :func:`evaluate_transfer`).
    :raises GradientFreeError: ``target`` is an int8 model (evaluate it by transfer instead).
    """
    check_pytorch_classifier(target, "target")
    x, labels, x_adv = _examples(target, x, y, attack, x_adv, progress, seed, attack_kwargs)
    predict = _predictor(logits, batch_size)
    clean = predict(target, x).argmax(1) == labels
    adv = predict(target, x_adv).argmax(1) == labels
    linf, l2, _, _ = _perturbation(x, x_adv)
    return WhiteboxResult(
        target=name,
        attack=_attack_name(attack),
        n=len(labels),
        clean_accuracy=float(clean.mean()),
        adversarial_accuracy=float(adv.mean()),
        linf_mean=linf,
        l2_mean=l2,
        seed=seed,
        intervals={
            "clean_accuracy": wilson_interval(int(clean.sum()), len(clean)),
            "adversarial_accuracy": wilson_interval(int(adv.sum()), len(adv)),
        },
        per_example={"clean": clean, "adversarial": adv},
    )
