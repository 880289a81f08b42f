"""The importance interface and its registry: how a criterion rates weights, and what it needs.

A criterion is a small class with one method, :meth:`Importance.score`, returning one score
tensor per prunable tensor. It declares what it needs (labels, the model on calibration
data, gradients, an attack) and which end of the ranking is removed; turning scores and a
compression ratio into masks is :mod:`gap_art.pruning.selection`'s job, never a criterion's.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import torch
from torch import nn

from gap_art.pruning.targets import Target
from gap_art.registry import Registry

Batches = Sequence[tuple[torch.Tensor, torch.Tensor]]


def make_batches(x: np.ndarray, y: np.ndarray | None, batch_size: int, device: torch.device) -> Batches:
    """Calibration batches ``(x, y)`` as tensors; ``y`` is zeros when no labels were given."""
    x_t = torch.from_numpy(x)
    y_t = torch.from_numpy(y) if y is not None else torch.zeros(len(x), dtype=torch.int64)
    return list(zip(x_t.split(batch_size), y_t.split(batch_size), strict=True))


Craft = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class ScoringInputs:
    """Everything a criterion may use; each criterion reads only what it declares.

    :param targets: The prunable tensors, ``(module, name)`` pairs of ``model``.
    :param model: Inputs to logits (with the classifier's preprocessing); criteria with
        ``needs_data`` run it on ``batches``.
    :param batches: Calibration batches ``(x, y)``; ``y`` is zeros when no labels were given.
    :param seed: Seed of random criteria.
    :param craft: ``craft(x, y) -> x_adv``, the calibration attack of ``needs_attack`` criteria.
    :param train_mode: Take losses in training mode (the GAP reference's habit).
    """

    targets: list[Target]
    model: nn.Module | None = None
    batches: Batches = ()
    seed: int = 0
    craft: Craft | None = None
    train_mode: bool = False


class Importance(ABC):
    """A pruning criterion. Subclass, set the class attributes, implement :meth:`score`, and
    register it with ``@gap_art.pruning.importance.register("name")``."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    """One line for ``--help`` and ``gap-art list``."""
    removes: ClassVar[Literal["lowest", "highest"]] = "lowest"
    """Which end of the ranking is pruned: baselines remove the least important weights,
    GAP the weights the adversarial examples rely on most."""
    needs_labels: ClassVar[bool] = False
    needs_data: ClassVar[bool] = False
    """Runs the model on calibration data (so it needs a PyTorch forward pass)."""
    needs_gradients: ClassVar[bool] = False
    needs_attack: ClassVar[bool] = False
    """Scores adversarial examples crafted by ``ScoringInputs.craft``."""

    @abstractmethod
    def score(self, inputs: ScoringInputs) -> list[torch.Tensor]:
        """One score tensor per target, shaped like it."""


IMPORTANCE: Registry[type[Importance]] = Registry("pruning criterion", "gap_art.importance")
register = IMPORTANCE.register


def get(name: str, param: str | None = None) -> Importance:
    """A fresh instance of the criterion registered as ``name``."""
    return IMPORTANCE.get(name, param)()


def names(adversarial: bool | None = None) -> list[str]:
    """Registered criteria; ``adversarial=True`` only those that need an attack (GAP's),
    ``False`` only the others."""
    if adversarial is None:
        return IMPORTANCE.names()
    return IMPORTANCE.names(lambda cls: cls.needs_attack == adversarial)
