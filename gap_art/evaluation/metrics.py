"""Proportions with Wilson score intervals, and top-k accuracy counted over examples."""

from __future__ import annotations

import math

import numpy as np

Z_95 = 1.959963984540054


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (95% by default).

    Unlike the normal approximation it stays inside [0, 1] and is sensible at 0 or n.
    ``n == 0`` gives ``(nan, nan)``.
    """
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be between 0 and n={n}, got {successes}")
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
