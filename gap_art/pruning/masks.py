"""Everything about ``torch.nn.utils.prune`` masks: install, read, copy, load, make permanent,
and measure what they removed. No ART here: plain PyTorch modules in and out."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import prune

from gap_art.pruning.targets import Target, target_names


def trainable_tensor(module: nn.Module, name: str) -> torch.Tensor:
    """The leaf parameter behind ``module.name`` (``name_orig`` once ``prune`` has masked it)."""
    orig = name + "_orig"
    return getattr(module, orig) if hasattr(module, orig) else getattr(module, name)


def current_mask(module: nn.Module, name: str) -> torch.Tensor:
    """The ``prune`` mask of ``module.name``, or all ones when it has none."""
    mask = getattr(module, name + "_mask", None)
    return mask if mask is not None else torch.ones_like(getattr(module, name))


def apply_masks(targets: Sequence[Target], masks: Sequence[torch.Tensor]) -> None:
    """Install ``masks`` as ``torch.nn.utils.prune`` masks (``<name>_orig`` / ``<name>_mask``).

    On an already pruned tensor the new mask is combined with the old one by ``prune``.
    """
    for (module, name), mask in zip(targets, masks, strict=True):
        prune.custom_from_mask(module, name, mask.to(getattr(module, name).device))


def _pruned_tensors(model: nn.Module) -> list[tuple[nn.Module, str]]:
    return [
        (module, hook._tensor_name)
        for module in model.modules()
        for hook in module._forward_pre_hooks.values()
        if isinstance(hook, prune.BasePruningMethod)
    ]


def make_permanent(model: nn.Module) -> nn.Module:
    """``prune.remove`` every mask of ``model`` in place: zeros stay, the reparametrization goes."""
    for module, name in _pruned_tensors(model):
        prune.remove(module, name)
    return model


def load_masked_state(model: nn.Module, state: dict[str, torch.Tensor]) -> nn.Module:
    """``model.load_state_dict(state)`` that first re-attaches a ``prune`` mask for every
    ``<name>_mask`` entry, so pruned state dicts load into a fresh model."""
    modules = dict(model.named_modules())
    for key, mask in state.items():
        if key.endswith("_mask"):
            module_path, _, tensor_name = key[: -len("_mask")].rpartition(".")
            prune.custom_from_mask(modules[module_path], tensor_name, mask)
    model.load_state_dict(state)
    return model


@contextlib.contextmanager
def _masks_detached(model: nn.Module) -> Iterator[list[tuple[nn.Module, str]]]:
    """Drop the derived ``weight = weight_orig * weight_mask`` tensors while copying.

    ``copy.deepcopy`` refuses a pruned module because that derived tensor is not a leaf;
    it is recomputed from the (copied) parameter and mask afterwards.
    """
    pruned = _pruned_tensors(model)
    saved = [(module, name, getattr(module, name)) for module, name in pruned]
    for module, name, _ in saved:
        delattr(module, name)
    try:
        yield pruned
    finally:
        for module, name, value in saved:
            setattr(module, name, value)


def clone_module(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` that also works when it holds ``torch.nn.utils.prune`` masks."""
    with _masks_detached(model) as pruned:
        clone = copy.deepcopy(model)
    names = {id(module): path for path, module in model.named_modules()}
    clone_modules = dict(clone.named_modules())
    for module, name in pruned:
        twin = clone_modules[names[id(module)]]
        setattr(twin, name, getattr(twin, name + "_orig") * getattr(twin, name + "_mask"))
    return clone


@dataclass(frozen=True)
class CompressionReport:
    """A compression ratio measured from the weights themselves.

    :param n_prunable: Prunable weights.
    :param n_nonzero: Prunable weights that are not zero.
    :param n_other: Parameters that are never pruned (biases, norm layers, excluded layers).
    :param compression: ``n_prunable / n_nonzero`` (basis ``prunable``).
    :param model_compression: ``(n_prunable + n_other) / (n_nonzero + n_other)`` (basis ``model``).
    :param sparsity: Fraction of prunable weights that are zero.
    """

    n_prunable: int
    n_nonzero: int
    n_other: int
    compression: float
    model_compression: float
    sparsity: float


def other_parameter_count(model: nn.Module, targets: Sequence[Target]) -> int:
    """Parameters of ``model`` outside the targets (masked tensors counted once)."""
    prunable = {id(trainable_tensor(m, n)) for m, n in targets}
    return sum(p.numel() for p in model.parameters() if id(p) not in prunable)


def measure_compression(model: nn.Module, targets: Sequence[Target]) -> CompressionReport:
    """Count the nonzero prunable weights of ``model`` and report the achieved ratios."""
    n_prunable = sum(getattr(m, n).numel() for m, n in targets)
    n_nonzero = sum(int(torch.count_nonzero(getattr(m, n))) for m, n in targets)
    n_other = other_parameter_count(model, targets)
    return CompressionReport(
        n_prunable=n_prunable,
        n_nonzero=n_nonzero,
        n_other=n_other,
        compression=n_prunable / max(n_nonzero, 1),
        model_compression=(n_prunable + n_other) / max(n_nonzero + n_other, 1),
        sparsity=1 - n_nonzero / n_prunable,
    )


def layer_sparsity(model: nn.Module, targets: Sequence[Target]) -> dict[str, float]:
    """``{"<module path>.<name>": fraction of zero entries}`` for each target: where the
    weights were removed (a layer pruned to nothing explains a broken model)."""
    names = target_names(model, targets)
    return {
        name: 1 - int(torch.count_nonzero(getattr(m, n))) / getattr(m, n).numel()
        for name, (m, n) in zip(names, targets, strict=True)
    }
