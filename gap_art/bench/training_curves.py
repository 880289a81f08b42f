"""A target's training curve on the study's validation rows, recorded while it trains (issue 37):
after each epoch (0: before training), clean accuracy and accuracy under the primary attack
transferred from the dense model; with ``training_curves``, also under the same attack run
white-box on the model at that epoch, transferred from each attacker's own model, and from the
replica an attacker trains the same way, taken at the same epoch. Every epoch's model is then
kept in the cache, the replica's too."""

from __future__ import annotations

from typing import Any

import numpy as np
from art.estimators.classification import PyTorchClassifier

from gap_art.attacks import build_attack
from gap_art.bench.context import Context
from gap_art.bench.graph import Dependencies
from gap_art.bench.target_spec import TargetResult
from gap_art.bench.task_results import CraftResult, SourceCurve
from gap_art.defences.hardening import accuracy

PUBLIC_ATTACKERS = ("independent", "independent-arch", "robust")
"""The attackers whose own models a training curve transfers from (those the study names)."""


def public_role(attacker: str) -> str:
    """The dependency role of the validation craft from ``attacker``'s own model."""
    return f"curve from {attacker}"


class CurveRecorder:
    """The ``finetune_monitor`` of a target's training: its :attr:`points`
    (``[epoch, clean, transfer from the dense model]``, then ``white-box`` with ``full``), its
    :attr:`by_source` (transfer from each attacker's model and from the ``replica`` per epoch)
    and :attr:`checkpoints` (each epoch's model, with ``full``). Without a ``validation``
    dependency (a replica) it only keeps the models."""

    def __init__(self, task_id: str, ctx: Context, deps: Dependencies, full: bool) -> None:
        self.task_id, self.ctx, self.full = task_id, ctx, full
        self.validation = deps.get("validation", CraftResult)
        self.x, self.y = ctx.validation_set()
        self.x_adv = None if self.validation is None else ctx.examples(self.validation)
        self.public = {
            name: ctx.examples(craft)
            for name in PUBLIC_ATTACKERS
            if (craft := deps.get(public_role(name), CraftResult)) is not None
        }
        self.replica = deps.get("replica", TargetResult)
        self.points: list[tuple[float, ...]] = []
        self.by_source: dict[str, list[float | None]] = {name: [] for name in self.public}
        if self.replica is not None:
            self.by_source["replica"] = []
        self.checkpoints: list[str] = []

    def __call__(self, epoch: int, model: PyTorchClassifier) -> None:
        if self.full:
            self.checkpoints.append(self.ctx.save_model(f"{self.task_id}.epoch{epoch}", model.model))
        if self.validation is None:
            return
        assert self.x_adv is not None
        point: tuple[float, ...] = (epoch, self._accuracy(model, self.x), self._accuracy(model, self.x_adv))
        if self.full:
            point += (self._accuracy(model, self._craft(model)),)
        self.points.append(point)
        for name, x_adv in self.public.items():
            self.by_source[name].append(self._accuracy(model, x_adv))
        if self.replica is not None:
            self.by_source["replica"].append(self._replica_accuracy(epoch, model))

    def fields(self) -> dict[str, Any]:
        """What the target's :class:`~gap_art.bench.target_spec.TargetResult` takes from it
        (``None`` for what was not recorded)."""
        sources = tuple(SourceCurve(name, tuple(values)) for name, values in self.by_source.items())
        return {
            "validation_curve": tuple(self.points) or None,
            "validation_curve_sources": sources or None,
            "epoch_checkpoints": tuple(self.checkpoints) or None,
        }

    def _craft(self, on: PyTorchClassifier) -> np.ndarray:
        """The primary attack (the validation craft's, seeded: it never moves training's draws)
        run on ``on`` over the validation rows."""
        assert self.validation is not None
        return build_attack(self.validation.attack, on).generate(self.x, self.y)

    def _replica_accuracy(self, epoch: int, model: PyTorchClassifier) -> float | None:
        """Transfer from the replica's model at the same epoch (``None``: it stopped earlier)."""
        assert self.replica is not None
        kept = self.replica.epoch_checkpoints or ()
        if epoch >= len(kept):
            return None
        return self._accuracy(model, self._craft(self.ctx.classifier(kept[epoch])))

    def _accuracy(self, model: PyTorchClassifier, x: np.ndarray) -> float:
        return accuracy(model, x, self.y)
