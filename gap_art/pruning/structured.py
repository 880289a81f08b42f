"""Structured (channel) pruning through Torch-Pruning's dependency graph: whole output channels
of convolutions and neurons of linear layers leave the model, with every layer coupled to them
(BatchNorm, the next layer's inputs, a residual add's other branch) pruned consistently, so the
model becomes a physically smaller ``nn.Module`` that runs faster. The layer producing the
logits is never pruned (:func:`kept_whole`).

As for irregular pruning, *how to score* (a Torch-Pruning importance, :data:`CHANNEL_CRITERIA`)
is apart from *how much to remove*: :func:`prune_channels` is the one place that turns an
importance and a compression ratio (parameters before over after, as for irregular pruning)
into the smaller model.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
import torch_pruning as tp
from torch import nn

from gap_art.errors import ParameterError
from gap_art.pruning.importance import IMPORTANCE
from gap_art.runtime import seeded


@dataclass(frozen=True)
class ChannelCriterion:
    """How channels are scored: Torch-Pruning's importance (``make`` builds a fresh one), one
    line for ``gap-art list``, and whether it reads gradients on calibration data; or, with
    ``weight_criterion``, a gap-art criterion (:mod:`gap_art.pruning.importance`) whose
    per-weight scores :class:`SummedScores` sums over each channel."""

    make: Callable[[], tp.importance.Importance] | None
    description: str
    needs_gradients: bool = False
    weight_criterion: str | None = None

    @property
    def needs_labels(self) -> bool:
        """Whether scoring reads labelled calibration data."""
        summed = self.weight_criterion is not None and IMPORTANCE.get(self.weight_criterion).needs_labels
        return self.needs_gradients or summed

    @property
    def needs_attack(self) -> bool:
        """Whether scoring crafts attacks (GAP's criteria)."""
        return self.weight_criterion is not None and IMPORTANCE.get(self.weight_criterion).needs_attack


class SummedScores(tp.importance.GroupMagnitudeImportance):
    """Torch-Pruning's importance from gap-art's per-weight scores: a channel's score is the sum
    of the scores of its weights in every Conv/Linear layer coupled to it (its output rows and
    the next layers' input columns; BatchNorm carries none). Torch-Pruning removes the lowest;
    for a criterion that removes the highest (GAP's), the sums are negated.

    :param scores: Per-weight scores by layer (shaped like each layer's ``weight``).
    :param removes: Which end of the ranking goes: ``lowest`` or ``highest``.
    """

    def __init__(self, scores: Mapping[nn.Module, torch.Tensor], removes: str) -> None:
        super().__init__(group_reduction="sum", normalizer=None)
        self.scores, self.sign = scores, -1.0 if removes == "highest" else 1.0

    @torch.no_grad()
    def __call__(self, group: tp.Group) -> torch.Tensor | None:
        sums, roots = [], []
        for i, (dep, idxs) in enumerate(group):
            score = self.scores.get(dep.layer)
            if score is None or getattr(dep.layer, "transposed", False):
                continue
            if dep.pruning_fn in (tp.prune_conv_out_channels, tp.prune_linear_out_channels):
                sums.append(score[idxs].flatten(1).sum(1))
            elif dep.pruning_fn in (tp.prune_conv_in_channels, tp.prune_linear_in_channels):
                sums.append(score.transpose(0, 1).flatten(1).sum(1)[idxs])
            else:
                continue
            roots.append(group[i].root_idxs)
        return self.sign * self._reduce(sums, roots) if sums else None


SUMMED_CRITERIA = ("magnitude", "gap-grad", "gap-taylor", "gap-abs_grad")
"""gap-art's criteria summed per channel: ``magnitude`` (the sum of |w| over the channel's
Conv/Linear weights) and GAP's, where a channel goes when the adversarial examples rely on its
weights most (``gap-taylor``'s sum of ``w x g`` estimates how much removing the whole channel
lowers the adversarial loss)."""

CHANNEL_CRITERIA: dict[str, ChannelCriterion] = {
    "random": ChannelCriterion(
        tp.importance.RandomImportance, "remove a seeded random share of the channels"
    ),
    "l1": ChannelCriterion(
        lambda: tp.importance.GroupMagnitudeImportance(p=1),
        "remove the channels of smallest L1 norm over every layer coupled to them",
    ),
    "l2": ChannelCriterion(
        lambda: tp.importance.GroupMagnitudeImportance(p=2),
        "remove the channels of smallest L2 norm over every layer coupled to them",
    ),
    "taylor": ChannelCriterion(
        tp.importance.GroupTaylorImportance,
        "remove the channels of smallest |w x g|, g the clean-loss gradient",
        True,
    ),
    **{
        name: ChannelCriterion(
            None, f"{IMPORTANCE.get(name).description} (scores summed per channel)", weight_criterion=name
        )
        for name in SUMMED_CRITERIA
    },
}
"""The channel criteria by name (``StructuredPruning(criterion=...)``, ``gap-art prune
--structure channel --method ...``)."""

SEARCH_STEPS = 10
"""Bisection steps for the channel share that reaches a compression (a bracket narrower than
one channel in 1,024)."""

MOST_PRUNED = 0.95
"""The largest share of each layer's channels removed, and less where the narrowest prunable
layer would be left empty (Torch-Pruning then skips the layer: :func:`_most_pruned`)."""


@dataclass(frozen=True)
class ChannelReport:
    """What channel pruning did: parameters and multiply-adds (for one input) before and
    after, and the share of each prunable layer's channels removed."""

    parameters_before: int
    parameters_after: int
    macs_before: int
    macs_after: int
    channel_ratio: float

    @property
    def compression(self) -> float:
        """Parameters before over after (every parameter: the smaller model's whole size)."""
        return self.parameters_before / self.parameters_after

    @property
    def macs_reduction(self) -> float:
        """Multiply-adds before over after."""
        return self.macs_before / self.macs_after


def kept_whole(model: nn.Module) -> list[nn.Module]:
    """The layers whose output channels channel pruning leaves whole: those producing the
    logits (marked ``is_classifier`` in gap-art's architectures, else the last linear layer),
    and those an architecture names in a ``residual_stream()`` method (channels a shortcut adds
    to in a way Torch-Pruning cannot follow, as ResNet-20's padded ones)."""
    marked = [m for m in model.modules() if getattr(m, "is_classifier", False)]
    logits = marked or [m for m in model.modules() if isinstance(m, nn.Linear)][-1:]
    stream = getattr(model, "residual_stream", None)
    return logits + (list(stream()) if callable(stream) else [])


def count(model: nn.Module, example_inputs: torch.Tensor) -> tuple[int, int]:
    """``(multiply-adds, parameters)`` of ``model`` on ``example_inputs`` (Torch-Pruning's count)."""
    macs, parameters = tp.utils.count_ops_and_params(model, example_inputs)
    return int(macs), int(parameters)


def prune_channels(
    model: nn.Module,
    example_inputs: torch.Tensor,
    criterion: str,
    compression: float,
    seed: int = 0,
    gradients: Callable[[nn.Module], None] | None = None,
    weight_scores: Mapping[str, torch.Tensor] | None = None,
) -> ChannelReport:
    """Remove channels of ``model`` in place, the same share from every prunable layer, the
    smallest share whose parameter compression reaches ``compression``; ``criterion`` (see
    :data:`CHANNEL_CRITERIA`) picks which channels go in each coupled group.

    :param example_inputs: A batch of inputs, traced to find the coupled layers.
    :param seed: Seeds the ``random`` criterion.
    :param gradients: For ``taylor``: fills each parameter's ``.grad`` (a loss on calibration
        data, backward), called on the model before it is pruned.
    :param weight_scores: For a criterion with a ``weight_criterion`` (GAP's): that criterion's
        per-weight scores of ``model``'s Conv/Linear weights, by parameter name
        (``features.0.weight``), the logits layer's included.
    :raises ParameterError: ``compression`` out of reach (the message gives the most there is).
    """
    if criterion not in CHANNEL_CRITERIA:
        raise ParameterError(f"criterion must be one of {sorted(CHANNEL_CRITERIA)}, got {criterion!r}")
    chosen = CHANNEL_CRITERIA[criterion]
    if (chosen.needs_gradients and gradients is None) or (chosen.weight_criterion and weight_scores is None):
        raise ParameterError(f"criterion {criterion!r} needs gradients or scores on calibration data")
    macs_before, parameters_before = count(model, example_inputs)
    ratio = _ratio_reaching(model, example_inputs, compression, parameters_before)
    if chosen.needs_gradients and gradients is not None:
        model.zero_grad(set_to_none=True)
        gradients(model)
    with seeded(seed):
        _prune(model, example_inputs, _importance(model, chosen, weight_scores), ratio)
    model.zero_grad(set_to_none=True)
    macs_after, parameters_after = count(model, example_inputs)
    return ChannelReport(parameters_before, parameters_after, macs_before, macs_after, ratio)


LAYER_CHANNELS: dict[type[nn.Module], tuple[tuple[int, str, Callable[..., object]], ...]] = {
    nn.Conv2d: (
        (0, "out_channels", tp.prune_conv_out_channels),
        (1, "in_channels", tp.prune_conv_in_channels),
    ),
    nn.Linear: (
        (0, "out_features", tp.prune_linear_out_channels),
        (1, "in_features", tp.prune_linear_in_channels),
    ),
    nn.BatchNorm1d: ((0, "num_features", tp.prune_batchnorm_out_channels),),
    nn.BatchNorm2d: ((0, "num_features", tp.prune_batchnorm_out_channels),),
}
"""Per layer type: which weight dimension counts which channels, the attribute holding the count,
and Torch-Pruning's function that removes some."""


def shrink_to(model: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """Give each layer of ``model`` (its architecture as built) the channel counts of its weights
    in ``state`` (a channel-pruned model's state dict) by dropping its last channels, so that the
    state loads: a channel-pruned checkpoint reloads from its architecture's name alone. Layers
    whose weights are as large as built are left as they are."""
    for name, module in model.named_modules():
        prefix = f"{name}." if name else ""
        weight = state.get(f"{prefix}weight", state.get(f"{prefix}weight_orig"))
        if weight is None or getattr(module, "groups", 1) != 1:
            continue
        for dim, attribute, prune in LAYER_CHANNELS.get(type(module), ()):
            built = int(getattr(module, attribute))
            if weight.dim() > dim and weight.shape[dim] < built:
                prune(module, list(range(int(weight.shape[dim]), built)))


def _importance(
    model: nn.Module, criterion: ChannelCriterion, weight_scores: Mapping[str, torch.Tensor] | None
) -> tp.importance.Importance:
    """Torch-Pruning's importance for ``criterion``: its own, or ``weight_scores`` summed."""
    if criterion.make is not None:
        return criterion.make()
    assert criterion.weight_criterion is not None and weight_scores is not None
    modules = dict(model.named_modules())
    by_layer = {modules[name.rpartition(".")[0]]: score for name, score in weight_scores.items()}
    return SummedScores(by_layer, IMPORTANCE.get(criterion.weight_criterion).removes)


def _prune(
    model: nn.Module, example: torch.Tensor, importance: tp.importance.Importance, ratio: float
) -> None:
    pruner = tp.pruner.MetaPruner(
        model, example, importance=importance, pruning_ratio=ratio, ignored_layers=kept_whole(model)
    )
    pruner.step()


def _most_pruned(model: nn.Module) -> float:
    """The largest channel share that leaves every prunable layer one channel at least: Torch-
    Pruning keeps ``int(n * (1 - share))`` of a layer's ``n`` channels."""
    whole = {id(m) for m in kept_whole(model)}
    widths = [
        int(getattr(m, "out_channels", getattr(m, "out_features", 0)))
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear)) and id(m) not in whole
    ]
    narrowest = min(widths, default=2)
    return min(MOST_PRUNED, 1 - 1 / narrowest - 1e-9) if narrowest > 1 else 0.0


def _ratio_reaching(model: nn.Module, example: torch.Tensor, compression: float, parameters: int) -> float:
    """The smallest channel share whose pruning leaves at most ``parameters / compression``
    parameters (how many depends on the share only, not on which channels go)."""

    def left(ratio: float) -> int:
        trial = copy.deepcopy(model)
        _prune(trial, example, tp.importance.GroupMagnitudeImportance(p=1), ratio)
        return sum(p.numel() for p in trial.parameters())

    if compression == 1:
        return 0.0  # the unpruned arm: no channel leaves
    goal = parameters / compression
    most = _most_pruned(model)
    if left(most) > goal:
        reachable = parameters / left(most)
        raise ParameterError(
            f"compression {compression:g} is out of reach for this model by channel pruning "
            f"(the logits layer stays whole): choose a value in (1, {reachable:.3g}]"
        )
    low, high = 0.0, most
    for _ in range(SEARCH_STEPS):
        middle = (low + high) / 2
        low, high = (low, middle) if left(middle) <= goal else (middle, high)
    return high
