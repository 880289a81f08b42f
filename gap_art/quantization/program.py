"""A (quantized) model as a ``torch.export`` program file (``.pt2``): what ships, loadable with
``torch.export.load`` by anyone, without gap-art; an int8 program calls torchao's
``quantized_decomposed`` operators, so the loading process must import
``torchao.quantization.pt2e`` first (which registers them)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import torch
from torch import nn

from gap_art.quantization.int8 import QuantizationError, export_model
from gap_art.runtime import atomic_write


def save_program(model: nn.Module, example: torch.Tensor, path: str | Path) -> Path:
    """Export ``model`` with a dynamic batch (traced on ``example``) and write it atomically."""
    program = export_model(model, example)
    return atomic_write(path, lambda tmp: torch.export.save(program, tmp))


def load_program(path: str | Path) -> nn.Module:
    """The callable module of a ``.pt2`` program written by :func:`save_program`.

    :raises QuantizationError: Missing file, or not a ``torch.export`` program.
    """
    import torchao.quantization.pt2e  # noqa: F401  (registers the int8 operators a program calls)

    try:
        return torch.export.load(str(path)).module()
    except (OSError, RuntimeError, ValueError, KeyError, zipfile.BadZipFile) as error:
        raise QuantizationError(f"{path} is not a readable torch.export program (.pt2): {error}") from error
