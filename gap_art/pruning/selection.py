"""Budget to masks: the one place that turns scores and a compression ratio into masks.

Scores are ranked on their own device with ``torch.kthvalue``; ties at the threshold are
broken by a seeded random choice, so exactly the requested number of weights is removed
while the order of distinct scores is kept.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from gap_art.errors import ParameterError
from gap_art.pruning.masks import (
    CompressionReport,
    apply_masks,
    current_mask,
    measure_compression,
    other_parameter_count,
)
from gap_art.pruning.targets import Target, prunable_parameters
from gap_art.validation import check_compression

SCOPES = ("global", "layer")
BASES = ("prunable", "model")


def select_removed(
    scores: torch.Tensor,
    n_remove: int,
    largest: bool,
    generator: torch.Generator | None = None,
    forced: torch.Tensor | None = None,
) -> torch.Tensor:
    """Boolean mask of the ``n_remove`` entries to remove from a flat score vector.

    :param largest: Remove the highest scores (GAP) instead of the lowest (baselines).
    :param generator: CPU generator that breaks ties at the threshold.
    :param forced: Entries already removed; they count towards ``n_remove``.
    :raises ValueError: NaN scores, or fewer removals than ``forced`` entries.
    """
    if scores.dim() != 1:
        raise ValueError(f"scores must be a flat vector, got shape {tuple(scores.shape)}")
    if torch.isnan(scores).any():
        raise ParameterError("scores contain NaN; check the model and calibration data")
    if not 0 <= n_remove <= scores.numel():
        raise ParameterError(f"n_remove must be between 0 and {scores.numel()}, got {n_remove}")
    key = (-scores if largest else scores).float()
    if forced is not None and forced.any():
        n_forced = int(forced.sum())
        if n_forced > n_remove:
            raise ParameterError(
                f"{n_forced} weights are already pruned, more than the {n_remove} this "
                "compression removes; ask for a higher compression"
            )
        key = key.masked_fill(forced, float("-inf"))
    removed = torch.zeros_like(key, dtype=torch.bool)
    if n_remove == 0:
        return removed
    threshold = _kth_smallest(key, n_remove)
    removed |= key < threshold
    ties = (key == threshold).nonzero().squeeze(1)
    need = n_remove - int(removed.sum())
    order = torch.randperm(len(ties), generator=generator)[:need].to(ties.device)
    removed[ties[order]] = True
    return removed


def _kth_smallest(key: torch.Tensor, k: int) -> torch.Tensor:
    """The k-th smallest value, computed where the scores live: numpy's introselect on a
    zero-copy view for CPU tensors (faster than ``torch.kthvalue`` there), ``kthvalue`` on
    accelerators (no host copy)."""
    if key.device.type == "cpu":
        return torch.as_tensor(np.partition(key.numpy(), k - 1)[k - 1])
    return torch.kthvalue(key, k).values


def layer_allocation(sizes: Sequence[int], n_remove: int) -> list[int]:
    """Split ``n_remove`` over layers in proportion to their sizes, summing exactly.

    Largest-remainder rounding keeps every layer's fraction as equal as integers allow.
    """
    total = sum(sizes)
    shares = [size * n_remove / total for size in sizes]
    counts = [int(share) for share in shares]
    leftovers = sorted(range(len(sizes)), key=lambda i: counts[i] - shares[i])
    for i in leftovers[: n_remove - sum(counts)]:
        counts[i] += 1
    return counts


def fit_removed(counts: Sequence[int], removed: Sequence[int]) -> list[int]:
    """Per-layer removals that keep what each layer already lost and still sum to the budget
    ``sum(counts)``: a layer already past its share keeps its extra losses, and the other
    layers give up as much of their share, in proportion to the room they have left.

    :raises ValueError: More weights are already removed than the budget allows.
    """
    raised = [max(count, done) for count, done in zip(counts, removed, strict=True)]
    excess = sum(raised) - sum(counts)
    if excess == 0:
        return raised
    room = [count - done for count, done in zip(raised, removed, strict=True)]
    if excess > sum(room):
        raise ParameterError(
            f"{sum(removed)} weights are already pruned, more than the {sum(counts)} this "
            "compression removes; ask for a higher compression"
        )
    return [count - cut for count, cut in zip(raised, layer_allocation(room, excess), strict=True)]


def weights_to_keep(n_prunable: int, compression: float, basis: str = "prunable", n_other: int = 0) -> int:
    """How many prunable weights a compression ratio keeps.

    ``basis="prunable"``: ``compression = n_prunable / kept``.
    ``basis="model"`` (the reference's):
    ``compression = (n_prunable + n_other) / (kept + n_other)``, with ``n_other`` the
    parameters that are never pruned (biases, norm layers).

    :raises ValueError: ``compression < 1``, unknown basis, or nothing would remain.
    """
    if basis not in BASES:
        raise ParameterError(f"compression_basis must be one of {list(BASES)}, got {basis!r}")
    check_compression(compression)
    if basis == "prunable":
        keep = round(n_prunable / compression)
    else:
        keep = round((n_prunable + n_other) / compression - n_other)
    if keep < 1:
        limit = n_prunable if basis == "prunable" else (n_prunable + n_other) / (1 + n_other)
        raise ParameterError(
            f"compression {compression} would remove every prunable weight; "
            f"it must be at most {limit:.6g} for this model"
        )
    return keep


def compute_masks(
    targets: Sequence[Target],
    scores: Sequence[torch.Tensor],
    compression: float,
    scope: str = "global",
    largest: bool = False,
    seed: int = 0,
    basis: str = "prunable",
    n_other: int = 0,
) -> list[torch.Tensor]:
    """Masks (1 keep, 0 remove) that reach ``compression`` by removing the chosen scores.

    Weights already masked by ``torch.nn.utils.prune`` stay removed and count in the budget.

    :param scope: ``global`` ranks all layers together; ``layer`` removes the same fraction
        from every layer.
    :param largest: Remove the highest scores (GAP) rather than the lowest (baselines).
    :param seed: Breaks ties among equal scores.
    """
    if scope not in SCOPES:
        raise ParameterError(f"scope must be one of {list(SCOPES)}, got {scope!r}")
    if len(scores) != len(targets):
        raise ValueError(f"expected {len(targets)} score tensors, got {len(scores)}")
    for (module, name), score in zip(targets, scores, strict=True):
        if score.shape != getattr(module, name).shape:
            raise ValueError(f"score shape {tuple(score.shape)} does not match {name} of {module}")
    sizes = [s.numel() for s in scores]
    n_remove = sum(sizes) - weights_to_keep(sum(sizes), compression, basis, n_other)
    generator = torch.Generator().manual_seed(seed)
    forced = [current_mask(m, n).flatten() == 0 for m, n in targets]
    if scope == "global":
        flat = torch.cat([s.detach().flatten().to(scores[0].device) for s in scores])
        removed = select_removed(flat, n_remove, largest, generator, torch.cat(forced).to(flat.device))
        pieces = removed.split(sizes)
    else:
        counts = fit_removed(layer_allocation(sizes, n_remove), [int(f.sum()) for f in forced])
        pieces = tuple(
            select_removed(s.detach().flatten(), k, largest, generator, f.to(s.device))
            for s, k, f in zip(scores, counts, forced, strict=True)
        )
    return [(~piece).to(score.dtype).view_as(score) for piece, score in zip(pieces, scores, strict=True)]


def prune_by_scores(
    model: nn.Module,
    scores: Sequence[torch.Tensor],
    compression: float,
    parameters: Sequence[Target] | None = None,
    scope: str = "global",
    largest: bool = False,
    seed: int = 0,
    basis: str = "prunable",
    prune_classifier: bool = False,
) -> CompressionReport:
    """Mask ``model`` in place to reach ``compression`` and report the ratio achieved.

    :param scores: One tensor per prunable tensor (see :func:`prunable_parameters`).
    :param parameters: The tensors the scores are for (default: every Conv/Linear weight
        but the classifier layer's).
    :param largest: Remove the highest scores (GAP) instead of the lowest (baselines).
    :param basis: ``prunable`` (ratio over prunable weights) or ``model`` (the reference's:
        non-prunable parameters count as kept).
    :param prune_classifier: Also prune the layer producing the logits (off by default, as
        in the reference implementation).
    """
    targets = prunable_parameters(model, parameters, prune_classifier)
    n_other = other_parameter_count(model, targets) if basis == "model" else 0
    masks = compute_masks(targets, scores, compression, scope, largest, seed, basis, n_other)
    apply_masks(targets, masks)
    return measure_compression(model, targets)
