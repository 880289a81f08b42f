"""Files you can ship, with pruning masks folded in (``torch.nn.utils.prune.remove``).

Three formats (:data:`FORMATS`):

- ``state_dict``: the float weights, zeros included, as ``torch.save`` writes them; load with
  ``model.load_state_dict(torch.load(path, weights_only=True))``.
- ``sparse``: a safetensors file that stores each Conv and Linear weight as a bitmask of its
  nonzero entries plus their values (float32, or int8 with one float32 scale per output channel),
  everything else as is. Load with one call, no gap-art model code needed beyond this module::

      model.load_state_dict(gap_art.export.load_sparse("model.sparse.safetensors"))

- ``pt2``: a ``torch.export`` program (float or int8 through torchao's PT2E flow), with the
  model's input normalisation inside, so it takes pixel-space inputs in [0, 1]; load with
  ``torch.export.load(path).module()`` after ``import torchao.quantization.pt2e``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gap_art.errors import ParameterError
from gap_art.pruning import clone_module, make_permanent
from gap_art.pruning.targets import prunable_parameters
from gap_art.quantization import quantize_int8, save_program
from gap_art.runtime import atomic_write

FORMATS = ("state_dict", "sparse", "pt2")
SPARSE_FORMAT = "gap-art-sparse"
SPARSE_VERSION = "1"


class ExportError(ParameterError):
    """A file that is not a sparse export gap-art can read, or a model it cannot export."""


class Standardize(nn.Module):
    """``(x - mean) / std`` per channel: a model's input normalisation inside a shipped program."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(list(mean)).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std)).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def folded(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in eval mode with every pruning mask made permanent (zeros stay)."""
    return make_permanent(clone_module(model)).cpu().eval()


def save_state_dict(model: nn.Module, path: str | Path) -> Path:
    """The folded float weights as a plain ``state_dict`` file."""
    state = {k: v.detach().clone() for k, v in folded(model).state_dict().items()}
    return atomic_write(path, lambda tmp: torch.save(state, tmp))


def weight_names(model: nn.Module) -> list[str]:
    """State-dict keys of the Conv and Linear weights (the classifier's included): what the
    sparse format stores as bitmask plus values, and what its int8 option quantizes."""
    paths = {id(module): name for name, module in model.named_modules()}
    targets = prunable_parameters(model, None, prune_classifier=True)
    return [f"{paths[id(module)]}.{name}".lstrip(".") for module, name in targets]


def int8_per_channel(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 values and one float32 scale per output channel (row 0 of ``weight``)."""
    flat = weight.detach().reshape(len(weight), -1).float()
    scale = flat.abs().amax(dim=1).div(127.0)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    values = torch.round(flat / scale[:, None]).clamp_(-127, 127).to(torch.int8)
    return values.reshape(weight.shape), scale


def quantize_weights(model: nn.Module) -> nn.Module:
    """The folded model with its Conv and Linear weights rounded to int8 and back: exactly what
    an int8 sparse file reloads as."""
    model = folded(model)
    state = model.state_dict()
    for name in weight_names(model):
        values, scale = int8_per_channel(state[name])
        state[name] = values.float() * scale.view(-1, *([1] * (values.dim() - 1)))
    model.load_state_dict(state)
    return model


def save_sparse(model: nn.Module, path: str | Path, int8: bool = False) -> Path:
    """Write the sparse safetensors file of ``model`` (module docstring); ``int8`` stores its
    Conv and Linear weights as int8 with per-channel scales."""
    from safetensors.torch import save_file

    model = folded(model)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    shapes = {}
    for name in weight_names(model):
        weight = state.pop(name)
        present = weight != 0
        shapes[name] = list(weight.shape)
        bits = np.packbits(present.flatten().numpy())
        state[f"{name}.bitmask"] = torch.from_numpy(bits)
        if int8:
            values, scale = int8_per_channel(weight)
            state[f"{name}.values"] = values[present].contiguous()
            state[f"{name}.scale"] = scale.contiguous()
        else:
            state[f"{name}.values"] = weight[present].contiguous()
    metadata = {"format": SPARSE_FORMAT, "version": SPARSE_VERSION, "shapes": json.dumps(shapes)}
    return atomic_write(path, lambda tmp: save_file(state, str(tmp), metadata=metadata))


def load_sparse(path: str | Path) -> dict[str, torch.Tensor]:
    """The dense ``state_dict`` of a sparse file (float32 weights, int8 ones dequantized), ready
    for ``model.load_state_dict``.

    :raises ExportError: Not a gap-art sparse safetensors file.
    """
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as file:
            metadata = file.metadata() or {}
            names = file.keys()
            tensors = {key: file.get_tensor(key) for key in names}
    except (SafetensorError, OSError, ValueError) as error:
        raise ExportError(f"{path} is not a readable safetensors file: {error}") from None
    if metadata.get("format") != SPARSE_FORMAT or metadata.get("version") != SPARSE_VERSION:
        raise ExportError(f"{path} is not a gap-art sparse file (format {SPARSE_FORMAT} v{SPARSE_VERSION})")
    for name, shape in json.loads(metadata["shapes"]).items():
        tensors[name] = _dense(tensors, name, tuple(shape))
    return tensors


def _dense(tensors: dict[str, torch.Tensor], name: str, shape: tuple[int, ...]) -> torch.Tensor:
    count = int(np.prod(shape))
    bits = tensors.pop(f"{name}.bitmask").numpy()
    present = torch.from_numpy(np.unpackbits(bits, count=count).astype(bool)).reshape(shape)
    values = tensors.pop(f"{name}.values")
    scale = tensors.pop(f"{name}.scale", None)
    weight = torch.zeros(shape, dtype=torch.float32)
    if scale is None:
        weight[present] = values
    else:
        scales = scale.view(-1, *([1] * (len(shape) - 1))).expand(shape)
        weight[present] = values.float() * scales[present]
    return weight


def save_pt2(
    model: nn.Module,
    path: str | Path,
    example: torch.Tensor,
    preprocessing: tuple[Sequence[float], Sequence[float]] | None = None,
    calibration: torch.Tensor | None = None,
    backend: str = "x86",
) -> Path:
    """Write a ``torch.export`` program of the folded model behind its normalisation; with
    ``calibration`` (pixel-space inputs) it is int8 through torchao's PT2E flow."""
    program = folded(model)
    if preprocessing is not None:
        program = nn.Sequential(Standardize(*preprocessing), program).eval()
    if calibration is not None:
        program = quantize_int8(program, calibration, backend)
    return save_program(program, example, path)
