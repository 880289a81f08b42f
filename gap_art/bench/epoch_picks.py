"""Targets chosen from a training curve (issue 37: validation chooses, test scores). For each
clean-accuracy budget of ``curve_budgets``, the epoch of a curve target whose validation clean
accuracy stays within the budget of the dense model's and whose validation accuracy under its
worst transfer source (the dense model, each attacker's own model, the replica at that epoch)
is highest; that epoch's model, kept in the cache, becomes a target of its own (``<target>~2pt``),
which the study attacks and scores on test as any other, and which the clean-accuracy budgets
may pick too. The replica an attacker trains the same way is taken at the epoch the defender
kept (an attacker who knows the recipe, epochs included)."""

from __future__ import annotations

from collections.abc import Sequence

from gap_art.bench.context import Context
from gap_art.bench.graph import Dependencies
from gap_art.bench.target_names import pick_name
from gap_art.bench.target_spec import TargetResult, TargetSpec, target_kind
from gap_art.bench.task_results import SourceCurve


def worst_transfer(curve: Sequence[Sequence[float]], sources: Sequence[SourceCurve]) -> list[float]:
    """Per curve point, the lowest validation accuracy under the primary attack transferred from
    any source recorded there (the dense model, then each of ``sources`` that had a model)."""
    worst = [float(point[2]) for point in curve]
    for source in sources:
        for index, value in enumerate(source.accuracy):
            if value is not None:
                worst[index] = min(worst[index], value)
    return worst


def choose_epoch(
    curve: Sequence[Sequence[float]], sources: Sequence[SourceCurve], level: float
) -> int | None:
    """The index of the curve point validation picks: among those whose clean accuracy is at
    least ``level``, the highest worst-source transfer accuracy, then the higher clean accuracy,
    then the earlier epoch (``None``: no point qualifies; never a substitute)."""
    worst = worst_transfer(curve, sources)
    eligible = [index for index, point in enumerate(curve) if point[1] >= level]
    if not eligible:
        return None
    return max(eligible, key=lambda index: (worst[index], curve[index][1], -index))


class NoEpochWithinBudget(RuntimeError):
    """No epoch of a curve stays within the budget on validation: the pick's cells record it."""


@target_kind("epoch-pick", "pruning")
class EpochPickSpec(TargetSpec):
    """The model of one epoch of a compressed target's training curve (its ``curve``
    dependency), chosen within ``budget`` of the dense model's validation clean accuracy (its
    ``dense`` dependency), or, for an attacker's replica, at the epoch its ``chosen`` dependency
    (the defender's pick) kept."""

    budget: float = 0.0
    compression: float = 1.0

    @property
    def requested_compression(self) -> float:
        return self.compression

    def build(self, task_id: str, deps: Dependencies, ctx: Context) -> TargetResult:
        curve = deps.one("curve", TargetResult)
        kept = curve.epoch_checkpoints or ()
        chosen = deps.get("chosen", TargetResult)
        if chosen is not None:  # a replica: the defender's epoch (its last, had it stopped before)
            assert chosen.finetune_best_epoch is not None
            index: int | None = min(chosen.finetune_best_epoch, len(kept) - 1)
        else:
            dense = deps.one("dense", TargetResult).validation
            assert dense is not None and curve.validation_curve is not None
            level = dense.clean_accuracy - self.budget
            index = choose_epoch(curve.validation_curve, curve.validation_curve_sources or (), level)
        if index is None:
            raise NoEpochWithinBudget(
                f"no epoch of {curve.spec.name}'s training curve is within {100 * self.budget:g} points "
                "of the dense model's validation clean accuracy"
            )
        epoch = index if curve.validation_curve is None else int(curve.validation_curve[index][0])
        return TargetResult(
            spec=self,
            checkpoint=kept[index],
            size=curve.size,
            excluded_layers=curve.excluded_layers,
            finetune_epochs_run=curve.finetune_epochs_run,
            finetune_best_epoch=epoch,
            gap_eps=curve.gap_eps,
            gap_eps_step=curve.gap_eps_step,
            gap_steps=curve.gap_steps,
        )


@target_kind("art-epoch-pick", "art_defence")
class ArtEpochPickSpec(EpochPickSpec):
    """An epoch of one of ART's adversarial trainers' curves, chosen as for a compressed target."""


def pick_spec(curve: TargetSpec, budget: float) -> EpochPickSpec:
    """The pick of ``curve``'s training curve within ``budget`` (of its family's kind)."""
    kind = ArtEpochPickSpec if curve.family == ArtEpochPickSpec.family else EpochPickSpec
    name = pick_name(curve.name, budget)
    return kind(curve.seed, name, curve.method, budget, curve.requested_compression)
