"""Datasets of the study as in-memory tensors in [0, 1], channels first.

One entry point, :func:`load_dataset`, returns a :class:`DataBundle` whose metadata
(:class:`DatasetInfo`) carries the input shape, the number of classes and a suggested
L-inf attack budget.
"""

from gap_art.data.datasets import (
    DATASETS,
    DataBundle,
    DatasetInfo,
    DataUnavailableError,
    dataset_info,
    load_dataset,
)

__all__ = [
    "DATASETS",
    "DataBundle",
    "DatasetInfo",
    "DataUnavailableError",
    "dataset_info",
    "load_dataset",
]
