"""Proportions with Wilson score intervals, top-k accuracy counted over examples, per-class
recall, and the statistics that fit a paired, few-seed design: exact McNemar and Student t."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from gap_art.errors import ParameterError

Z_95 = 1.959963984540054


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (95% by default).

    Unlike the normal approximation it stays inside [0, 1] and is sensible at 0 or n.
    ``n == 0`` gives ``(nan, nan)``.
    """
    if not 0 <= successes <= n:
        raise ParameterError(f"successes must be between 0 and n={n}, got {successes}")
    if n == 0:
        return (math.nan, math.nan)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    # rounding can leave p a hair outside at k = 0 or k = n; the interval must hold it
    return (max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half)))


def topk_correct(logits: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Boolean per example: is the true label among the ``k`` highest scores."""
    k = min(k, logits.shape[1])
    top = np.argpartition(-logits, k - 1, axis=1)[:, :k]
    return (top == labels[:, None]).any(axis=1)


def proportion(flags: np.ndarray) -> tuple[float, int, int]:
    """``(fraction, successes, n)`` of a boolean array; the fraction is nan when empty."""
    n = int(flags.size)
    k = int(flags.sum())
    return (k / n if n else math.nan, k, n)


def class_recall(correct: np.ndarray, labels: np.ndarray, nb_classes: int) -> list[float | None]:
    """Per class, the fraction of its examples classified correctly (``None``: no example).

    A class whose recall collapsed explains "robustness" that is really a broken model.
    """
    return [float(correct[labels == k].mean()) if (labels == k).any() else None for k in range(nb_classes)]


def recall_collapsed(recall: float, support: int, reference: float, alpha: float = 0.01) -> bool:
    """Whether a class's recall, over its ``support`` examples, is significantly below half of
    ``reference`` (the dense model's recall on the same class): a one-sided exact binomial test
    at level ``alpha``. It fires for a deleted class, not for a class whose recall a few
    examples move from seed to seed (Fashion-MNIST's shirt)."""
    if support < 1 or reference <= 0:
        return False
    return _lower_tail(round(recall * support), support, reference / 2) < alpha


@functools.lru_cache(maxsize=65536)
def _lower_tail(k: int, n: int, p: float) -> float:
    """``P(X <= k)`` for ``X ~ Binomial(n, p)``: ``binomtest(k, n, p, alternative="less")``'s
    p-value, cached, since a study asks it of the same class sizes in every one of its rows."""
    return float(stats.binom.cdf(k, n, p))


COLLAPSE_LEVEL = 0.01
"""Family-wise level of the collapse test over one model's classes (Bonferroni)."""


def collapsed_classes(
    recall: Sequence[float | None],
    support: Sequence[int] | None,
    reference: Sequence[float | None],
    level: float = COLLAPSE_LEVEL,
) -> list[int]:
    """The classes whose recall is significantly below half of ``reference`` (the parent's
    recall on the same examples): :func:`recall_collapsed` for each class, Bonferroni-corrected
    at family-wise ``level``. Without class sizes, the bare "below half" threshold."""
    alpha = level / len(recall)
    return [
        k
        for k, (ours, theirs) in enumerate(zip(recall, reference, strict=True))
        if ours is not None
        and theirs is not None
        and (recall_collapsed(ours, support[k], theirs, alpha) if support else ours < 0.5 * theirs)
    ]


@dataclass(frozen=True)
class PairedTest:
    """Exact McNemar test of two classifiers' per-example correctness on the same examples.

    :param difference: Accuracy of the first minus accuracy of the second.
    :param only_first: Examples only the first gets right; ``only_second`` likewise.
    :param p_value: Two-sided exact binomial p-value of ``only_first`` among the discordant
        pairs (1.0 when there is none).
    """

    difference: float
    only_first: int
    only_second: int
    n: int
    p_value: float


def mcnemar_exact(first: np.ndarray, second: np.ndarray) -> PairedTest:
    """Compare two boolean per-example correctness arrays over the same examples."""
    first, second = np.asarray(first, dtype=bool), np.asarray(second, dtype=bool)
    if first.shape != second.shape or first.ndim != 1:
        raise ValueError(f"paired arrays must be 1-D and of one length, got {first.shape} and {second.shape}")
    only_first, only_second = int((first & ~second).sum()), int((~first & second).sum())
    discordant = only_first + only_second
    p_value = _two_sided_half(only_first, discordant) if discordant else 1.0
    difference = (only_first - only_second) / len(first) if len(first) else math.nan
    return PairedTest(difference, only_first, only_second, len(first), p_value)


def _two_sided_half(k: int, n: int) -> float:
    """The exact two-sided binomial p-value of ``k`` successes in ``n`` at probability one half:
    ``scipy.stats.binomtest(k, n, 0.5).pvalue`` (the distribution is symmetric, so it is twice
    the smaller tail), computed ten times as fast, which a report of thousands of tests needs."""
    return float(min(1.0, 2 * stats.binom.cdf(min(k, n - k), n, 0.5)))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of a family of p-values (in their order): the k-th smallest
    is multiplied by (m - k + 1), made monotone and capped at 1. Rejecting where the adjusted
    p is below alpha controls the family-wise error rate at alpha."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [0.0] * len(p_values)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def t_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """``(mean, low, high)``: the Student t interval of the mean of a few seeds' values
    (3 seeds: t = 4.30, not 1.96). One value gives ``(v, v, v)``: no spread is known."""
    data = np.asarray(values, dtype=float)
    mean = float(data.mean())
    if len(data) < 2 or np.all(data == data[0]):  # one seed, or no spread between seeds
        return mean, mean, mean
    low, high = _t_quantiles(confidence, len(data) - 1)
    scale = float(np.std(data, ddof=1)) / len(data) ** 0.5  # scipy.stats.sem
    return mean, low * scale + mean, high * scale + mean


@functools.cache
def _t_quantiles(confidence: float, df: int) -> tuple[float, float]:
    """The Student t quantiles that bound the central ``confidence`` of its mass, as
    ``scipy.stats.t.interval`` draws them (a report needs tens of thousands of intervals with a
    few distinct ``df``, and scipy's call costs a millisecond each)."""
    low, high = stats.t.interval(confidence, df)
    return float(low), float(high)


@dataclass(frozen=True)
class SeedTest:
    """A two-sided paired t-test of per-seed differences (the seed is the unit of replication).

    :param n: Seeds.
    :param mean: Mean difference.
    :param low: Lower end of its Student t interval (95%).
    :param high: Upper end.
    :param p_value: Two-sided p-value of "the mean difference is 0"; ``None`` with fewer than
        two seeds (no spread between seeds is known, so nothing is tested).
    """

    n: int
    mean: float
    low: float
    high: float
    p_value: float | None


def paired_t_test(differences: Sequence[float], confidence: float = 0.95) -> SeedTest:
    """Test per-seed differences (method A's score minus method B's, each on the same seed's
    models and test examples) against 0 with a one-sample t-test.

    Why a t-test: each difference is an accuracy over hundreds of examples, so it is close to
    normal, and the test reaches small p-values from a few consistent seeds (five seeds with
    a steady effect reach p < 0.001), which an exact sign-flip test cannot (its smallest
    two-sided p over five seeds is 1/16). Identical differences (no spread) give p = 0 when
    they are not 0 and p = 1 when they are."""
    data = np.asarray(differences, dtype=float)
    if data.ndim != 1 or not np.isfinite(data).all():
        raise ParameterError(f"differences must be a 1-D sequence of finite numbers, got {differences!r}")
    if len(data) < 2:
        value = float(data[0]) if len(data) else math.nan
        return SeedTest(len(data), value, value, value, None)
    mean, low, high = t_interval(data.tolist(), confidence)
    if np.all(data == data[0]):
        return SeedTest(len(data), mean, low, high, 0.0 if mean != 0 else 1.0)
    p_value = float(stats.ttest_1samp(data, 0.0).pvalue)
    return SeedTest(len(data), mean, low, high, p_value)
