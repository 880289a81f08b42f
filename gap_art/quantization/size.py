"""Honest storage size of a model: dense float32, dense int8, and sparse encodings."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

from gap_art.pruning import Target, measure_compression, prunable_parameters


@dataclass(frozen=True)
class SizeReport:
    """Bytes needed to store a model's parameters under several encodings.

    :param n_parameters: All parameters (a pruned tensor counted once).
    :param n_prunable: Prunable weights (Conv and Linear weights by default).
    :param n_nonzero: Prunable weights that are not zero.
    :param float32_bytes: Every parameter as float32.
    :param int8_bytes: Prunable weights as int8 plus one float32 scale per output channel;
        the other parameters (biases, norm layers) as float32.
    :param sparse_float32_bytes: Nonzero prunable weights as float32 plus a one-bit-per-weight
        presence bitmap; other parameters as float32.
    :param sparse_int8_bytes: As ``sparse_float32_bytes`` with int8 values and channel scales.
    """

    n_parameters: int
    n_prunable: int
    n_nonzero: int
    float32_bytes: int
    int8_bytes: int
    sparse_float32_bytes: int
    sparse_int8_bytes: int


def model_size(model: nn.Module, parameters: Sequence[Target] | None = None) -> SizeReport:
    """Measure a float model (pruned or not): how many bytes each encoding takes.

    :param parameters: The weights stored as int8 or sparse; every Conv/Linear weight
        (the classifier layer's included) by default.
    """
    targets = prunable_parameters(model, parameters, prune_classifier=True)
    counts = measure_compression(model, targets)
    n_prunable, n_nonzero, n_other = counts.n_prunable, counts.n_nonzero, counts.n_other
    scales = 4 * sum(getattr(m, n).shape[0] for m, n in targets)  # one scale per output channel
    bitmap = math.ceil(n_prunable / 8)
    return SizeReport(
        n_parameters=n_prunable + n_other,
        n_prunable=n_prunable,
        n_nonzero=n_nonzero,
        float32_bytes=4 * (n_prunable + n_other),
        int8_bytes=n_prunable + scales + 4 * n_other,
        sparse_float32_bytes=4 * n_nonzero + bitmap + 4 * n_other,
        sparse_int8_bytes=n_nonzero + bitmap + scales + 4 * n_other,
    )
