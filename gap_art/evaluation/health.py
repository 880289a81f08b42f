"""What a compressed model kept of its parent, on labelled examples: its accuracy against the
parent's and against chance, and the classes whose recall collapsed. A command that produces a
model says so instead of reporting success for a broken one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gap_art.evaluation.metrics import class_recall, collapsed_classes, wilson_interval


@dataclass(frozen=True)
class ModelHealth:
    """A compressed model against its parent on the same labelled examples.

    :param accuracy: The model's accuracy.
    :param parent_accuracy: The parent's.
    :param majority_rate: The accuracy of always answering the most frequent class: a model at
        or below it is at chance.
    :param collapsed: Each class whose recall fell significantly below half of the parent's,
        with ``(recall, parent's recall)``.
    :param n: How many examples the accuracies were measured on (0: unknown).
    """

    accuracy: float
    parent_accuracy: float
    majority_rate: float
    collapsed: dict[int, tuple[float, float]]
    n: int = 0

    @property
    def at_chance(self) -> bool:
        """No better than always answering the most frequent class."""
        return self.accuracy <= self.majority_rate

    @property
    def parent_above_chance(self) -> bool:
        """The parent beats always answering the most frequent class by more than sampling
        noise: its accuracy's 95% Wilson interval lies above that rate (an untrained parent's
        0.11 on ten classes does not)."""
        if self.n == 0:
            return self.parent_accuracy > self.majority_rate
        return wilson_interval(round(self.parent_accuracy * self.n), self.n)[0] > self.majority_rate

    @property
    def broken(self) -> bool:
        """At chance where the parent was not: compressing it lost the task."""
        return self.at_chance and self.parent_above_chance

    def warnings(self) -> list[str]:
        """One line per problem (none for a healthy model)."""
        lines = [
            f"class {k}: recall {ours:.2f} against the parent's {theirs:.2f} (below half of it)"
            for k, (ours, theirs) in self.collapsed.items()
        ]
        if self.at_chance:
            parent = "at chance too" if not self.broken else f"{self.parent_accuracy:.4f}"
            lines.append(
                f"accuracy {self.accuracy:.4f} is at chance (always answering the most frequent class "
                f"scores {self.majority_rate:.4f}; the parent: {parent})"
            )
        return lines


def majority_rate(y: np.ndarray) -> float:
    """The accuracy of always answering the most frequent class of ``y``: chance level."""
    return float(np.bincount(np.asarray(y)).max() / len(y))


def model_health(parent: Any, model: Any, x: np.ndarray, y: np.ndarray) -> ModelHealth:
    """Compare ``model`` with ``parent`` (ART classifiers, or anything with ``predict``) on
    ``(x, y)`` (class indices)."""
    nb_classes = int(max(y.max() + 1, parent.nb_classes))
    correct = [np.asarray(c.predict(x).argmax(1) == y) for c in (parent, model)]
    recall = [class_recall(c, y, nb_classes) for c in correct]
    support = np.bincount(y, minlength=nb_classes).tolist()
    collapsed = collapsed_classes(recall[1], support, recall[0])
    return ModelHealth(
        accuracy=float(correct[1].mean()),
        parent_accuracy=float(correct[0].mean()),
        majority_rate=majority_rate(y),
        collapsed={k: (float(recall[1][k] or 0.0), float(recall[0][k] or 0.0)) for k in collapsed},
        n=len(y),
    )
