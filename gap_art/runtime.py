"""Process-level helpers every layer shares: the device, the precision of gradient steps, seeding,
seeded subsets, atomic writes.

This module imports only :mod:`gap_art.settings`, :mod:`gap_art.validation` and
:mod:`gap_art.errors` from gap-art, so any layer may use it.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import random
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from gap_art.errors import ParameterError
from gap_art.settings import DEVICES, PRECISIONS
from gap_art.validation import check_choice

READABLE = stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IROTH
"""0644: results are shared with colleagues, like the plots matplotlib writes."""


def check_device(device: object, param: str = "device", present: bool = True) -> None:
    """``device`` is one of :data:`DEVICES` (``cuda:N`` too); with ``present``, the GPU it
    asks for is here (off where a finished study made elsewhere is only read)."""
    if not isinstance(device, str) or device.split(":")[0] not in DEVICES:
        raise ParameterError(f"{param} must be one of {list(DEVICES)}, got {device!r}")
    if present and device.startswith("cuda") and not torch.cuda.is_available():
        raise ParameterError(
            f"{param} {device!r} asked for, but no CUDA GPU is available; use 'cpu' or 'auto'"
        )


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` picks CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if isinstance(device, torch.device):
        return device
    check_device(device)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


_PRECISION: contextvars.ContextVar[str] = contextvars.ContextVar("gap_art_precision", default="float32")


def check_precision(precision: object, param: str = "precision") -> None:
    """``precision`` is one of :data:`~gap_art.settings.PRECISIONS`."""
    check_choice(precision, param, PRECISIONS)


def native_bfloat16(device: torch.device) -> bool:
    """Whether ``device`` computes in bfloat16 natively: a CUDA GPU that supports it, or a CPU
    with AVX512-BF16 or AMX (elsewhere bfloat16 is emulated, and slower than float32)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type != "cpu":
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def check_native_precision(precision: str, device: torch.device, param: str = "precision") -> None:
    """Refuse ``bfloat16`` where ``device`` would only emulate it (see :func:`native_bfloat16`)."""
    check_precision(precision, param)
    if precision == "bfloat16" and not native_bfloat16(device):
        raise ParameterError(
            f"{param} 'bfloat16' needs a CPU with AVX512-BF16 or AMX, or a CUDA GPU with bfloat16; "
            f"{device.type} here has neither: use 'float32'"
        )


@contextlib.contextmanager
def computing_precision(precision: str) -> Iterator[None]:
    """Run the gradient steps inside the block (gap-art's training loop and its torchattacks
    crafting, see :func:`gradient_autocast`) at ``precision``; restored after it.

    ``bfloat16`` is autocast: weights, optimizer states and examples stay float32, the
    forward pass runs in bfloat16 where torch's autocast allows; prediction and scoring, ART's
    own training loops and attacks, attacks that stop on the decision boundary (CW, see
    :attr:`~gap_art.attacks.AttackRecipe.bfloat16`) and int8 models stay float32.
    """
    check_precision(precision)
    token = _PRECISION.set(precision)
    try:
        yield
    finally:
        _PRECISION.reset(token)


def gradient_autocast(device: torch.device, allowed: bool = True) -> torch.autocast:
    """The autocast one gradient step runs under: bfloat16 inside
    ``computing_precision("bfloat16")`` where the step ``allowed`` it, off otherwise."""
    enabled = allowed and _PRECISION.get() == "bfloat16"
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Fix torch's CPU threads for the block (``None``: leave them). On CPU the thread count
    changes the order of float sums, so equal thread counts give equal numbers."""
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def seeded(seed: int | None) -> Iterator[None]:
    """Seed torch, numpy and random inside the block and restore their states after it.

    Attacks with random starts (torchattacks, ART) draw from the global generators; this
    makes them reproducible without disturbing the caller's random state.
    """
    if seed is None:
        yield
        return
    with kept_random_state():
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        random.seed(seed)
        yield


@contextlib.contextmanager
def kept_random_state() -> Iterator[None]:
    """Restore torch's, numpy's and random's generators after the block, so that what runs
    inside (a training curve's monitor between epochs) never moves the caller's later draws."""
    np_state, py_state = np.random.get_state(), random.getstate()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices):
        try:
            yield
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)


def seeded_subset(n: int, size: int | None, seed: int) -> np.ndarray:
    """Sorted indices of a seeded random subset of ``size`` out of ``n`` (all when ``size``
    is ``None`` or not smaller than ``n``): the one way gap-art draws subsets of examples."""
    if size is None or size >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


def atomic_write(path: str | Path, write: Callable[[str], object]) -> Path:
    """Call ``write(tmp_path)`` then rename onto ``path`` (mode 0644), so a crash leaves no
    half file and colleagues can read what was written. The temporary name keeps ``path``'s
    suffix, so writers that infer the format from it (numpy, matplotlib) work unchanged."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, READABLE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))
