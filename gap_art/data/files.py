"""The user's own data: an ImageFolder tree or an ``.npz`` file, read into memory as float
tensors in [0, 1], channels first, like the built-in datasets.

- ImageFolder: ``PATH/train/<class>/*.png`` and ``PATH/test/<class>/*`` (or ``val/``); the class
  folders of the two splits must match. Grey images stay one channel, others become RGB.
- ``.npz``: arrays ``x_train``, ``y_train``, ``x_test``, ``y_test``; images ``(N, H, W)``,
  ``(N, H, W, C)`` or ``(N, C, H, W)``, ``uint8`` (0..255) or floats in [0, 1]; integer labels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from gap_art.data.datasets import (
    DataBundle,
    DatasetInfo,
    DataUnavailableError,
    Split,
    per_channel,
    split_data,
)
from gap_art.errors import ParameterError

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
TEST_FOLDERS = ("test", "val")
DEFAULT_EPS = 8 / 255
"""L-inf budget suggested for the user's data (the common CIFAR/ImageNet budget); set ``eps``."""


def load_files(
    path: str | Path,
    input_size: tuple[int, int] | None = None,
    mean: tuple[float, ...] | None = None,
    std: tuple[float, ...] | None = None,
    n_train: int | None = None,
    n_test: int | None = None,
    seed: int = 0,
    validation_fraction: float | None = None,
) -> DataBundle:
    """Read an ImageFolder tree or an ``.npz`` file (module docstring) as a :class:`DataBundle`.

    :param input_size: ``(height, width)`` every image is resized to (required for an
        ImageFolder tree whose images differ in size).
    :param mean: Per-channel mean of the model's normalisation (with ``std``); kept in the
        metadata and applied as ART preprocessing, so attacks work in pixel space.
    :param validation_fraction: Also draw a validation split from the training rows the train
        subset leaves out (as :func:`~gap_art.data.load_dataset` does).
    :raises DataUnavailableError: No such file or folder.
    :raises ValueError: A layout or array gap-art cannot read (the message says which).
    """
    root = Path(path)
    if not root.exists():
        raise DataUnavailableError(
            f"data {root} does not exist: expected an ImageFolder tree or an .npz file"
        )
    if root.is_dir():
        (train, test), classes = _image_folder(root, input_size)
    elif root.suffix == ".npz":
        train, test = _npz(root, input_size)
        classes = int(max(train[1].max(), test[1].max())) + 1
    else:
        raise ParameterError(f"data must be a folder (ImageFolder) or an .npz file, got {root}")
    channels = int(train[0].shape[1])
    info = DatasetInfo(
        name=root.stem or root.name,
        input_shape=tuple(int(v) for v in train[0].shape[1:]),
        nb_classes=classes,
        eps=DEFAULT_EPS,
        mean=per_channel(mean, channels, "mean"),
        std=per_channel(std, channels, "std"),
        path=str(root.resolve()),
    )
    return split_data(info, train, test, n_train, n_test, seed, validation_fraction)


def _image_folder(root: Path, input_size: tuple[int, int] | None) -> tuple[tuple[Split, Split], int]:
    from torchvision.datasets import ImageFolder

    test_dir = next((root / name for name in TEST_FOLDERS if (root / name).is_dir()), None)
    if not (root / "train").is_dir() or test_dir is None:
        raise ParameterError(
            f"data {root} must hold train/ and test/ (or val/) folders with one folder per class"
        )
    splits = [ImageFolder(str(folder)) for folder in (root / "train", test_dir)]
    if splits[0].classes != splits[1].classes:
        raise ParameterError(
            f"data {root}: train/ has classes {splits[0].classes}, {test_dir.name}/ has {splits[1].classes}"
        )
    grey = _is_grey(splits[0].samples[0][0])
    tensors = tuple(_read_images(split.samples, grey, input_size, root) for split in splits)
    return (tensors[0], tensors[1]), len(splits[0].classes)


def _is_grey(path: str) -> bool:
    from PIL import Image

    with Image.open(path) as image:
        return image.mode in ("1", "L", "I;16", "I")


def _read_images(
    samples: list[tuple[str, int]], grey: bool, input_size: tuple[int, int] | None, root: Path
) -> Split:
    from PIL import Image
    from torchvision.transforms.functional import pil_to_tensor, resize

    images = []
    for path, _ in samples:
        with Image.open(path) as image:
            pixels = pil_to_tensor(image.convert("L" if grey else "RGB"))
        images.append(resize(pixels, list(input_size), antialias=True) if input_size else pixels)
    sizes = {tuple(image.shape[1:]) for image in images}
    if len(sizes) > 1:
        raise ParameterError(
            f"data {root}: images differ in size {sorted(sizes)[:3]}: set input_size (--input-size H W)"
        )
    x = torch.stack(images).float().div_(255.0)
    return x, torch.tensor([label for _, label in samples], dtype=torch.int64)


def _npz(path: Path, input_size: tuple[int, int] | None) -> tuple[Split, Split]:
    with np.load(path, allow_pickle=False) as arrays:
        missing = [key for key in NPZ_KEYS if key not in arrays]
        if missing:
            raise ParameterError(f"data {path} lacks {missing}: an .npz needs arrays {list(NPZ_KEYS)}")
        x_train, y_train, x_test, y_test = (arrays[key] for key in NPZ_KEYS)
    return _npz_split(x_train, y_train, input_size, path, "train"), _npz_split(
        x_test, y_test, input_size, path, "test"
    )


def _npz_split(
    x: np.ndarray, y: np.ndarray, input_size: tuple[int, int] | None, path: Path, split: str
) -> Split:
    if len(x) != len(y) or y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or (y < 0).any():
        raise ParameterError(
            f"data {path}: y_{split} must be one non-negative integer label per x_{split} image"
        )
    images = torch.from_numpy(_channels_first(x, path, split).astype(np.float32))
    if x.dtype == np.uint8:
        images /= 255.0
    elif images.min() < 0 or images.max() > 1:
        raise ParameterError(
            f"data {path}: x_{split} must be uint8 or floats in [0, 1] (normalise with --mean/--std)"
        )
    if input_size is not None:
        from torchvision.transforms.functional import resize

        images = resize(images, list(input_size), antialias=True).clamp_(0.0, 1.0)
    return images.contiguous(), torch.from_numpy(y.astype(np.int64))


def _channels_first(x: np.ndarray, path: Path, split: str) -> np.ndarray:
    if x.ndim == 3:
        return x[:, None]
    if x.ndim == 4 and x.shape[3] in (1, 3) and x.shape[1] not in (1, 3):
        return x.transpose(0, 3, 1, 2)
    if x.ndim == 4 and x.shape[1] in (1, 3):
        return x
    raise ParameterError(
        f"data {path}: x_{split} must be (N, H, W), (N, H, W, C) or (N, C, H, W), got {x.shape}"
    )
