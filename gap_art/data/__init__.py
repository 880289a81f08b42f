"""Datasets of the study as in-memory tensors in [0, 1], channels first.

:func:`load_dataset` reads a built-in dataset by name, :func:`load_files` the user's own
(an ImageFolder tree or an ``.npz``), and :class:`DataSpec` chooses between them (or the data a
checkpoint records). Each returns a :class:`DataBundle` whose metadata (:class:`DatasetInfo`)
carries the input shape, the number of classes, a suggested L-inf attack budget and any
normalisation.
"""

from gap_art.data.datasets import (
    DATASETS,
    DataBundle,
    DatasetInfo,
    DataUnavailableError,
    dataset_info,
    load_dataset,
)
from gap_art.data.files import load_files
from gap_art.data.source import DataSpec

__all__ = [
    "DATASETS",
    "DataBundle",
    "DataSpec",
    "DatasetInfo",
    "DataUnavailableError",
    "dataset_info",
    "load_dataset",
    "load_files",
]
