import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from gap_art.data import DATASETS, DataUnavailableError, dataset_info, load_dataset
from gap_art.data import datasets as datasets_module


def test_digits_shapes_ranges_and_metadata(digits):
    x, y = digits.train.tensors
    assert x.shape[1:] == (1, 8, 8) == digits.info.input_shape
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0 and float(x.max()) > 0.9
    assert set(y.tolist()) == set(range(10)) and digits.info.nb_classes == 10
    assert len(digits.train) + len(digits.test) == 1797
    assert 0 < digits.info.eps < 1


def test_digits_split_is_fixed_and_disjoint(digits):
    again = load_dataset("digits")
    assert torch.equal(again.test.tensors[0], digits.test.tensors[0])
    train = {row.tobytes() for row in digits.train.tensors[0].numpy()}
    overlap = sum(row.tobytes() in train for row in digits.test.tensors[0].numpy())
    assert overlap < 5  # a handful of digits images are exact duplicates in sklearn's set


def test_subsets_are_seeded_and_bounded():
    a = load_dataset("digits", n_train=100, n_test=50, seed=3)
    b = load_dataset("digits", n_train=100, n_test=50, seed=3)
    c = load_dataset("digits", n_train=100, n_test=50, seed=4)
    assert len(a.train) == 100 and len(a.test) == 50
    assert torch.equal(a.train.tensors[0], b.train.tensors[0])
    assert not torch.equal(a.train.tensors[0], c.train.tensors[0])
    with pytest.raises(ValueError, match="n_train must be between 1 and 1347"):
        load_dataset("digits", n_train=5000)


def test_loaders_and_numpy(digits):
    batch_x, batch_y = next(iter(digits.train_loader(batch_size=32, seed=1)))
    again_x, _ = next(iter(digits.train_loader(batch_size=32, seed=1)))
    assert batch_x.shape == (32, 1, 8, 8) and torch.equal(batch_x, again_x)
    x, y = digits.numpy("test")
    assert isinstance(x, np.ndarray) and x.shape == (450, 1, 8, 8) and y.shape == (450,)


def test_unknown_dataset_lists_known_ones():
    with pytest.raises(ValueError, match="cifar10.*digits.*fashion-mnist.*mnist"):
        dataset_info("svhn")
    assert set(DATASETS) == {"digits", "fashion-mnist", "mnist", "cifar10"}


def _write_idx(folder: Path, n: int) -> None:
    """Tiny Fashion-MNIST-format gzip IDX files (the Debian package's layout)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix in ("train", "t10k"):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        with gzip.open(folder / f"{prefix}-images-idx3-ubyte.gz", "wb") as f:
            f.write(struct.pack(">IIII", 2051, n, 28, 28) + images.tobytes())
        with gzip.open(folder / f"{prefix}-labels-idx1-ubyte.gz", "wb") as f:
            f.write(struct.pack(">II", 2049, n) + labels.tobytes())


def test_fashion_mnist_from_the_debian_folder(tmp_path, monkeypatch):
    _write_idx(tmp_path / "debian", 20)
    monkeypatch.setattr(datasets_module, "DEBIAN_FASHION_MNIST_DIR", tmp_path / "debian")
    monkeypatch.setenv("GAP_ART_DATA", str(tmp_path / "cache"))
    bundle = load_dataset("fashion-mnist", download=False)
    x, y = bundle.train.tensors
    assert x.shape == (20, 1, 28, 28) and float(x.max()) <= 1.0 and y.max() < 10
    assert (tmp_path / "cache" / "FashionMNIST" / "raw" / "train-images-idx3-ubyte").is_file()


def test_fashion_mnist_from_a_data_dir_with_gzip_files(tmp_path):
    _write_idx(tmp_path, 12)
    bundle = load_dataset("fashion-mnist", data_dir=tmp_path, download=False)
    assert len(bundle.test) == 12


def test_real_fashion_mnist_from_debian_package(tmp_path, monkeypatch):
    """CI installs Debian's dataset-fashion-mnist; this reads the real files."""
    assert datasets_module._has_gzip_idx(datasets_module.DEBIAN_FASHION_MNIST_DIR), (
        "install Debian's dataset-fashion-mnist package (apt-get install -y dataset-fashion-mnist)"
    )
    monkeypatch.setenv("GAP_ART_DATA", str(tmp_path))
    bundle = load_dataset("fashion-mnist", n_train=100, n_test=100, download=False)
    assert bundle.info.input_shape == (1, 28, 28)
    assert len(bundle.train) == 100 and len(set(bundle.test.tensors[1].tolist())) > 5


def test_missing_data_offline_says_where_it_looked_and_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets_module, "DEBIAN_FASHION_MNIST_DIR", tmp_path / "none")
    monkeypatch.setenv("GAP_ART_DATA", str(tmp_path / "cache"))
    with pytest.raises(DataUnavailableError) as caught:
        load_dataset("fashion-mnist", download=False)
    message = str(caught.value)
    assert str(tmp_path / "none") in message and str(tmp_path / "cache") in message
    assert "apt-get install -y dataset-fashion-mnist" in message
    with pytest.raises(DataUnavailableError, match="network access"):
        load_dataset("cifar10", data_dir=tmp_path, download=False)
    with pytest.raises(DataUnavailableError, match=str(tmp_path)):
        load_dataset("mnist", data_dir=tmp_path, download=False)
