"""Where a command's data comes from: a built-in dataset by name, the user's own files, or,
when neither is named, the data a gap-art checkpoint records it was trained on."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from gap_art.data.datasets import DATASETS, DataBundle, DatasetInfo, load_dataset, per_channel
from gap_art.data.files import load_files
from gap_art.errors import ParameterError

DEFAULT_DATASET = "digits"
"""The embedded dataset used when nothing names the data."""


@dataclass(frozen=True)
class DataSpec:
    """The data a model is trained, pruned or attacked on.

    :param dataset: A built-in dataset name (:data:`~gap_art.data.DATASETS`).
    :param path: The user's ImageFolder tree or ``.npz`` file (:func:`~gap_art.data.load_files`).
    :param data_dir: Where built-in datasets are read from or downloaded to.
    :param input_size: ``(height, width)`` the user's images are resized to.
    :param mean: Per-channel normalisation mean, applied as ART preprocessing (with ``std``).
    :param std: Per-channel normalisation standard deviation.
    """

    dataset: str | None = None
    path: str | None = None
    data_dir: str | None = None
    input_size: tuple[int, int] | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.dataset is not None and self.path is not None:
            raise ParameterError("dataset and data name two sources: give one")
        if self.dataset is not None and self.dataset not in DATASETS:
            raise ParameterError(f"dataset must be one of {sorted(DATASETS)}, got {self.dataset!r}")
        if self.input_size is not None and (len(self.input_size) != 2 or min(self.input_size) < 1):
            raise ParameterError(
                f"input_size must be two positive integers (height width), got {self.input_size}"
            )
        if self.input_size is not None and self.path is None and self.dataset is not None:
            raise ParameterError(
                "input_size resizes your own images (data); built-in datasets keep their size"
            )
        if (self.mean is None) != (self.std is None):
            raise ParameterError("mean and std go together: give both or neither")
        if self.std is not None and any(not v > 0 for v in self.std):
            raise ParameterError(f"std must be positive numbers, got {self.std}")

    @classmethod
    def of(
        cls,
        dataset: str | None,
        path: str | None,
        data_dir: str | None = None,
        input_size: Sequence[int] | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> DataSpec:
        """From settings as a config file or command line gives them (lists, and a default
        ``dataset`` that ``path`` overrides); a ``path`` must exist."""
        if path is not None and not Path(path).exists():
            raise ParameterError(f"data {path} does not exist: expected an ImageFolder folder or an .npz")
        size = None if not input_size else (int(input_size[0]), int(input_size[-1]))
        floats = {k: None if not v else tuple(float(x) for x in v) for k, v in (("mean", mean), ("std", std))}
        if path is not None:
            return cls(None, str(path), None, size, **floats)
        return cls(dataset, None, data_dir, size, **floats)

    @functools.lru_cache(maxsize=8)  # noqa: B019 - specs are few, frozen and hashable
    def info(self) -> DatasetInfo:
        """The metadata alone (reads the user's files; a built-in dataset's is known)."""
        if self.path is None and self.mean is None:
            return DATASETS[self.dataset or DEFAULT_DATASET]
        return self.load(n_train=None if self.path else 1, n_test=None if self.path else 1).info

    @property
    def names_data(self) -> bool:
        """Whether this spec names its data (a built-in dataset or the user's files)."""
        return self.dataset is not None or self.path is not None

    def or_recorded(self, info: DatasetInfo | None) -> DataSpec:
        """This spec completed by what ``info`` (a checkpoint's record) says the model was
        trained on: with no data named, that data; with data named, the model's normalisation
        (and, for the user's files, its input size) unless given. An explicit ``mean``/``std``
        other than the recorded one is a ``ParameterError`` naming both: the model only works
        on inputs normalised as it was trained."""
        if info is None:
            return self
        if self.names_data:
            return self._with_normalisation_of(info)
        normalisation = (self.mean, self.std) if self.mean is not None else (info.mean, info.std)
        if info.path is not None:
            size = self.input_size or (int(info.input_shape[1]), int(info.input_shape[2]))
            return replace(self, path=info.path, input_size=size, mean=normalisation[0], std=normalisation[1])
        if info.name in DATASETS:
            return replace(self, dataset=info.name, mean=normalisation[0], std=normalisation[1])
        return self

    def _with_normalisation_of(self, info: DatasetInfo) -> DataSpec:
        channels = info.input_shape[0]
        given = (
            None
            if self.mean is None
            else (per_channel(self.mean, channels, "mean"), per_channel(self.std, channels, "std"))
        )
        recorded = None if info.mean is None else (info.mean, info.std)
        if given is not None and given != recorded:
            raise ParameterError(
                f"mean/std {given[0]}/{given[1]} differ from the normalisation the model was trained "
                f"with ({'none' if recorded is None else f'{recorded[0]}/{recorded[1]}'}): drop --mean/--std "
                "to use the model's own"
            )
        size = self.input_size
        if self.path is not None and size is None:
            size = (int(info.input_shape[1]), int(info.input_shape[2]))
        if recorded is None:
            return replace(self, input_size=size)
        return replace(self, mean=recorded[0], std=recorded[1], input_size=size)

    def check_fits(self, loaded: DatasetInfo, model: DatasetInfo | None) -> None:
        """Refuse data the model cannot classify: another channel count, input size or number
        of classes than ``model`` (a checkpoint's record) says, naming both."""
        if model is None:
            return
        for what, ours, theirs in (
            ("input shape", tuple(loaded.input_shape), tuple(model.input_shape)),
            ("number of classes", loaded.nb_classes, model.nb_classes),
        ):
            if ours != theirs:
                raise ParameterError(
                    f"data {self.describe()} has {what} {ours}, the model was trained on {theirs}: "
                    "give the data it was trained on (or drop --data to use the data it records)"
                )

    def load(
        self,
        n_train: int | None = None,
        n_test: int | None = None,
        seed: int = 0,
        validation_fraction: float | None = None,
    ) -> DataBundle:
        """The data in memory, optionally seeded subsets of each split, and with
        ``validation_fraction`` a validation split no train row is in
        (:mod:`gap_art.data.splits`)."""
        if self.path is not None:
            return load_files(
                self.path, self.input_size, self.mean, self.std, n_train, n_test, seed, validation_fraction
            )
        name = self.dataset or DEFAULT_DATASET
        bundle = load_dataset(
            name, self.data_dir, n_train, n_test, seed, validation_fraction=validation_fraction
        )
        if self.mean is None:
            return bundle
        channels = bundle.info.input_shape[0]
        mean, std = per_channel(self.mean, channels, "mean"), per_channel(self.std, channels, "std")
        bundle.info = replace(bundle.info, mean=mean, std=std)
        return bundle

    def describe(self) -> str:
        """The data in a few words, for reports."""
        name = Path(self.path).name if self.path is not None else self.dataset or DEFAULT_DATASET
        return name if self.mean is None else f"{name} (normalised)"
