"""Load the study's datasets into memory as float tensors in [0, 1], channels first."""

from __future__ import annotations

import gzip
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from gap_art.data.splits import SPLITS, TEST, TRAIN, VALIDATION, SplitRecord, training_rows
from gap_art.errors import ParameterError
from gap_art.runtime import seeded_subset

DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
"""Where Debian's ``dataset-fashion-mnist`` package installs the gzip IDX files."""

FASHION_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


Split = tuple[torch.Tensor, torch.Tensor]
"""Images and labels of one split."""


class DataUnavailableError(FileNotFoundError):
    """The dataset is not on disk and could not be downloaded."""


@dataclass(frozen=True)
class DatasetInfo:
    """What a model and an attack need to know about a dataset.

    :param name: Registry name of the dataset.
    :param input_shape: Shape of one example, channels first.
    :param nb_classes: Number of classes.
    :param eps: Suggested L-inf attack budget in the [0, 1] input range.
    :param clip_values: Range of valid input values.
    :param mean: Per-channel mean of the model's input normalisation (``None``: none), applied
        with ``std`` as ART preprocessing, so attacks and ``eps`` stay in pixel space.
    :param std: Per-channel standard deviation of that normalisation.
    :param path: Where the user's own data was read from (``None`` for a built-in dataset).
    """

    name: str
    input_shape: tuple[int, ...]
    nb_classes: int
    eps: float
    clip_values: tuple[float, float] = (0.0, 1.0)
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    path: str | None = None

    def __post_init__(self) -> None:
        if (self.mean is None) != (self.std is None):
            raise ParameterError("mean and std go together: give both or neither")
        if self.std is not None and any(not v > 0 for v in self.std):
            raise ParameterError(f"std must be positive, got {self.std}")

    @property
    def preprocessing(self) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
        """``(mean, std)`` as ART's ``preprocessing`` takes it, or ``None``."""
        if self.mean is None or self.std is None:
            return None
        return self.mean, self.std

    def to_dict(self) -> dict:
        data = {
            "name": self.name,
            "input_shape": list(self.input_shape),
            "nb_classes": self.nb_classes,
            "eps": self.eps,
            "clip_values": list(self.clip_values),
        }
        optional = {"mean": self.mean, "std": self.std, "path": self.path}
        data.update(
            {key: list(v) if isinstance(v, tuple) else v for key, v in optional.items() if v is not None}
        )
        return data

    @classmethod
    def from_dict(cls, data: dict) -> DatasetInfo:
        def floats(key: str) -> tuple[float, ...] | None:
            return None if data.get(key) is None else tuple(float(v) for v in data[key])

        return cls(
            name=str(data["name"]),
            input_shape=tuple(int(v) for v in data["input_shape"]),
            nb_classes=int(data["nb_classes"]),
            eps=float(data["eps"]),
            clip_values=(float(data["clip_values"][0]), float(data["clip_values"][1])),
            mean=floats("mean"),
            std=floats("std"),
            path=None if data.get("path") is None else str(data["path"]),
        )


DATASETS: dict[str, DatasetInfo] = {
    "digits": DatasetInfo("digits", (1, 8, 8), 10, eps=0.2),
    "fashion-mnist": DatasetInfo("fashion-mnist", (1, 28, 28), 10, eps=0.15),
    "mnist": DatasetInfo("mnist", (1, 28, 28), 10, eps=0.2),
    "cifar10": DatasetInfo("cifar10", (3, 32, 32), 10, eps=8 / 255),
}


@dataclass
class DataBundle:
    """The splits of one dataset, in memory, with their metadata: ``train`` and ``test``, and
    ``validation`` when asked for (rows of the official training split that ``train`` never
    holds: see :mod:`gap_art.data.splits`). ``splits`` records how each was drawn."""

    info: DatasetInfo
    train: TensorDataset
    test: TensorDataset
    validation: TensorDataset | None = None
    splits: dict[str, SplitRecord] = field(default_factory=dict)

    def train_loader(self, batch_size: int = 128, seed: int = 0, shuffle: bool = True) -> DataLoader:
        """A loader over the training split, shuffled reproducibly by ``seed``."""
        generator = torch.Generator().manual_seed(seed)
        return DataLoader(self.train, batch_size=batch_size, shuffle=shuffle, generator=generator)

    def test_loader(self, batch_size: int = 256) -> DataLoader:
        """A loader over the test split, in order."""
        return DataLoader(self.test, batch_size=batch_size, shuffle=False)

    def numpy(self, split: str = TEST) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)`` of a split as numpy arrays (float32 images, int64 labels), as ART expects."""
        if split not in SPLITS:
            raise ParameterError(f"split must be one of {list(SPLITS)}, got {split!r}")
        data = {TRAIN: self.train, VALIDATION: self.validation, TEST: self.test}[split]
        if data is None:
            raise ParameterError("this data has no validation split: load it with a validation_fraction")
        x, y = data.tensors
        return x.numpy(), y.numpy()


def split_data(
    info: DatasetInfo,
    train: Split,
    test: Split,
    n_train: int | None,
    n_test: int | None,
    seed: int,
    validation_fraction: float | None = None,
) -> DataBundle:
    """The bundle of a dataset's official ``train`` and ``test`` splits: seeded subsets of
    ``n_train`` and ``n_test`` rows (all when ``None``), and with ``validation_fraction`` a
    validation split drawn from the training rows the train subset leaves out."""
    for param, n, rows in (("n_train", n_train, len(train[0])), ("n_test", n_test, len(test[0]))):
        if n is not None and not 1 <= n <= rows:
            raise ParameterError(f"{param} must be between 1 and {rows}, got {n}")
    kept, held = training_rows(len(train[0]), n_train, validation_fraction, seed)
    test_rows = seeded_subset(len(test[0]), n_test, seed + 1)
    drawn = n_train is not None or validation_fraction is not None
    splits = {
        TRAIN: SplitRecord.of(TRAIN, TRAIN, kept, seed if drawn else None),
        TEST: SplitRecord.of(TEST, TEST, test_rows, None if n_test is None else seed + 1),
    }
    validation = None
    if validation_fraction is not None:
        validation = _rows(train, held)
        splits[VALIDATION] = SplitRecord.of(VALIDATION, TRAIN, held, seed)
    return DataBundle(info, _rows(train, kept), _rows(test, test_rows), validation, splits)


def per_channel(values: Sequence[float] | None, channels: int, param: str) -> tuple[float, ...] | None:
    """``values`` (a normalisation's mean or std) with one value per channel: a single value
    stands for every channel; any other count than 1 or ``channels`` is refused, naming ``param``."""
    if values is None:
        return None
    if len(values) not in (1, channels):
        raise ParameterError(f"{param} must give 1 or {channels} values (one per channel), got {len(values)}")
    return tuple(float(v) for v in values) * (channels if len(values) == 1 else 1)


def _rows(split: Split, indices: np.ndarray) -> TensorDataset:
    if len(indices) == len(split[0]):
        return TensorDataset(*split)
    keep = torch.from_numpy(indices)
    return TensorDataset(split[0][keep], split[1][keep])


def dataset_info(name: str) -> DatasetInfo:
    """Metadata of a registered dataset; an unknown name lists the known ones."""
    if name not in DATASETS:
        raise ParameterError(f"dataset must be one of {sorted(DATASETS)}, got {name!r}")
    return DATASETS[name]


def default_data_root() -> Path:
    """Where downloaded or unpacked data is kept: ``$GAP_ART_DATA`` or ``~/.cache/gap-art/data``."""
    return Path(os.environ.get("GAP_ART_DATA", Path.home() / ".cache" / "gap-art" / "data"))


def load_dataset(
    name: str = "digits",
    data_dir: str | Path | None = None,
    n_train: int | None = None,
    n_test: int | None = None,
    seed: int = 0,
    download: bool = True,
    validation_fraction: float | None = None,
) -> DataBundle:
    """Load a dataset by name, optionally a seeded random subset of each split.

    :param name: One of :data:`DATASETS` (``digits``, ``fashion-mnist``, ``mnist``, ``cifar10``).
    :param data_dir: Folder holding the data in torchvision's layout (or, for Fashion-MNIST,
        the gzip IDX files). Defaults to :func:`default_data_root`.
    :param n_train: Keep this many training examples (all when ``None``).
    :param n_test: Keep this many test examples (all when ``None``).
    :param seed: Seed of the subset selection.
    :param download: Let torchvision download what is missing.
    :param validation_fraction: Also draw a validation split of this share of the training
        set's size from the official training rows the train subset leaves out (drawn first,
        so no train row is a validation row; see :mod:`gap_art.data.splits`).
    :raises DataUnavailableError: The data is neither on disk nor downloadable.
    """
    info = dataset_info(name)
    loader = _LOADERS[name]
    root = Path(data_dir) if data_dir is not None else None
    train, test = loader(root, download)
    return split_data(info, train, test, n_train, n_test, seed, validation_fraction)


def _load_digits(root: Path | None, download: bool) -> tuple[Split, Split]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None]
    x_train, x_test, y_train, y_test = train_test_split(
        images, digits.target, test_size=0.25, random_state=0, stratify=digits.target
    )
    return _tensors(x_train, y_train), _tensors(x_test, y_test)


def _tensors(x: np.ndarray, y: np.ndarray) -> Split:
    return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y.astype(np.int64))


def _uint8_images(data: np.ndarray | torch.Tensor, channels_last: bool) -> torch.Tensor:
    images = torch.as_tensor(np.asarray(data)).float().div_(255.0)
    return images.permute(0, 3, 1, 2).contiguous() if channels_last else images.unsqueeze(1)


def _torchvision_splits(factory: Callable, root: Path, download: bool, channels_last: bool):
    splits = []
    for train in (True, False):
        dataset = factory(root=str(root), train=train, download=download)
        images = _uint8_images(dataset.data, channels_last)
        splits.append((images, torch.as_tensor(np.asarray(dataset.targets), dtype=torch.int64)))
    return splits[0], splits[1]


def _fetch(
    name: str, factory: Callable, root: Path, download: bool, channels_last: bool, looked: list[str]
) -> tuple[Split, Split]:
    try:
        return _torchvision_splits(factory, root, download, channels_last)
    except (RuntimeError, OSError) as error:
        message = _missing_message(name, looked + [str(root)], download, error)
        raise DataUnavailableError(message) from error


def _missing_message(name: str, looked: list[str], download: bool, error: Exception) -> str:
    how = {
        "fashion-mnist": "install Debian's package (`apt-get install -y dataset-fashion-mnist`), "
        "or run once with network access so torchvision can download it",
        "mnist": "run once with network access so torchvision can download it",
        "cifar10": "run once with network access so torchvision can download it",
    }[name]
    tried = "download was disabled" if not download else f"the download failed ({error})"
    return (
        f"dataset {name!r} is not available: looked in {', '.join(looked)} and {tried}. "
        f"To get it: {how}, or pass --data-dir / data_dir pointing at a folder in "
        f"torchvision's layout."
    )


def _load_mnist(root: Path | None, download: bool) -> tuple[Split, Split]:
    from torchvision.datasets import MNIST

    return _fetch("mnist", MNIST, root or default_data_root(), download, False, [])


def _load_cifar10(root: Path | None, download: bool) -> tuple[Split, Split]:
    from torchvision.datasets import CIFAR10

    return _fetch("cifar10", CIFAR10, root or default_data_root(), download, True, [])


def _load_fashion_mnist(root: Path | None, download: bool) -> tuple[Split, Split]:
    from torchvision.datasets import FashionMNIST

    looked: list[str] = []
    if root is None:
        root = default_data_root()
        if _has_gzip_idx(DEBIAN_FASHION_MNIST_DIR):
            _unpack_idx(DEBIAN_FASHION_MNIST_DIR, root / "FashionMNIST" / "raw")
        looked.append(str(DEBIAN_FASHION_MNIST_DIR))
    elif _has_gzip_idx(root):
        _unpack_idx(root, root / "FashionMNIST" / "raw")
    return _fetch("fashion-mnist", FashionMNIST, root, download, False, looked)


def _has_gzip_idx(folder: Path) -> bool:
    return all((folder / f"{stem}.gz").is_file() for stem in FASHION_MNIST_FILES)


def _unpack_idx(source: Path, raw: Path) -> None:
    """Decompress gzip IDX files into torchvision's raw folder (atomically, once)."""
    raw.mkdir(parents=True, exist_ok=True)
    for stem in FASHION_MNIST_FILES:
        target = raw / stem
        if target.is_file():
            continue
        partial = raw / f".{stem}.partial"
        with gzip.open(source / f"{stem}.gz", "rb") as src, open(partial, "wb") as dst:
            shutil.copyfileobj(src, dst)
        partial.replace(target)


_LOADERS: dict[str, Callable[[Path | None, bool], tuple[Split, Split]]] = {
    "digits": _load_digits,
    "fashion-mnist": _load_fashion_mnist,
    "mnist": _load_mnist,
    "cifar10": _load_cifar10,
}
