"""What one task hands the tasks after it, and the cache keeps: one frozen dataclass per kind
of task (:class:`SourceResult`, :class:`CraftResult`, :class:`CellResult`,
:class:`SanityResult`; the targets' :class:`~gap_art.bench.targets.TargetResult`), or a
:class:`Failure`. Each is JSON in the cache (``to_dict``, tagged with its ``result_kind``) and
comes back as the same type (:func:`result_from_dict`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, TypeVar

from gap_art.bench.rows import Row
from gap_art.evaluation.sanity import SanityCheck
from gap_art.jsonable import from_dict
from gap_art.settings import AttackSpec

R = TypeVar("R", bound="TaskResult")

Environment = Mapping[str, "str | int"]
"""The numerical environment a task ran in (device, torch threads, CPU capability,
precision): :func:`gap_art.bench.inputs.numerical_environment`."""

RESULT_KINDS: dict[str, type[TaskResult]] = {}


@dataclass(frozen=True, kw_only=True)
class TaskResult:
    """What every finished task records: its time and the numerical environment it ran in
    (set by :func:`gap_art.bench.graph.run_task`)."""

    result_kind: ClassVar[str] = ""
    time_s: float | None = None
    environment: Environment | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.result_kind:
            RESULT_KINDS[cls.result_kind] = cls

    @property
    def failed(self) -> bool:
        return False

    def to_dict(self) -> dict[str, Any]:
        """The JSON form the cache stores."""
        return {"result": self.result_kind, **asdict(self)}

    @classmethod
    def from_dict(cls: type[R], data: Mapping[str, Any]) -> R:
        return from_dict(cls, data)


def result_from_dict(data: Mapping[str, Any]) -> TaskResult:
    """The typed result of a cached ``to_dict`` form."""
    kind = data.get("result")
    if kind not in RESULT_KINDS:
        raise ValueError(f"not a task result of this version of gap-art: {kind!r}")
    return RESULT_KINDS[kind].from_dict(data)


@dataclass(frozen=True, kw_only=True)
class Failure(TaskResult):
    """A task that raised (its ``traceback``), or whose dependency failed (its ``error``):
    recorded, so the rows built on it say why and a resume retries it."""

    result_kind = "failure"
    error: str
    traceback: str | None = None

    @property
    def failed(self) -> bool:
        return True


@dataclass(frozen=True)
class ModelSize:
    """Achieved compression (over the prunable weights; for a channel-pruned model, every
    parameter before over after) and storage of a model, the sparsity of each Conv/Linear
    weight (:func:`gap_art.bench.targets.size_fields`), and, where channel pruning changed them,
    the multiply-adds for one input before and after (irregular pruning multiplies its zeros:
    no change)."""

    compression: float
    sparsity: float
    size_bytes: int
    size_encoding: str
    float32_bytes: int
    layer_sparsity: Mapping[str, float]
    macs_before: int | None = None
    macs_after: int | None = None


@dataclass(frozen=True, kw_only=True)
class ModelResult(TaskResult):
    """A task that made a model: its ``checkpoint`` in the cache (``""`` where the model is
    rebuilt from another, as an int8 model from its float parent) and its size."""

    checkpoint: str = ""
    size: ModelSize | None = None


@dataclass(frozen=True, kw_only=True)
class SourceResult(ModelResult):
    """A dense model trained (or the user's, loaded): the parent, an attacker or a pool member."""

    result_kind = "source"


@dataclass(frozen=True, kw_only=True)
class CraftResult(TaskResult):
    """Adversarial examples crafted once: the cache's ``examples`` file, the checkpoints of
    the models they were crafted on, the attack with its settings and how many examples."""

    result_kind = "craft"
    examples: str
    sources: tuple[str, ...]
    attack: AttackSpec
    n: int


@dataclass(frozen=True)
class SourceCurve:
    """A training curve's accuracy under the primary attack from one more ``source`` (an
    attacker's own model, or ``replica``: the replica at the same epoch), one value per point of
    the curve; ``None`` where that source had no model at that epoch."""

    source: str
    accuracy: tuple[float | None, ...]


@dataclass(frozen=True, kw_only=True)
class CellResult(TaskResult):
    """One cell's own columns of its results row (the transfer and white-box metrics, per
    example too); the row adds its target's identity and cost."""

    result_kind = "cell"
    columns: Row


@dataclass(frozen=True, kw_only=True)
class SanityResult(TaskResult):
    """The attack sanity checks of one seed's dense model."""

    result_kind = "sanity"
    seed: int
    checks: tuple[SanityCheck, ...]
