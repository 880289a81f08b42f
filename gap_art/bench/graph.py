"""The study as a graph of independent, cached tasks: :class:`TaskSpec` (what one kind of task
is, how it runs and how it names itself), :class:`Task` (a spec with the tasks it needs and
its id) and :class:`Graph`.

Each task's id is a hash of everything that determines its output: its spec, the ids of the
tasks it depends on, and the study's inputs its kind reads (:class:`~gap_art.bench.inputs.
StudyInputs`: the data as loaded, the user's model code, gap-art's computing code, library
versions, and the configuration fields the kind declares in :attr:`TaskSpec.reads`). So a
changed input changes exactly the ids downstream of it, and a finished task is never redone.
A task reads the configuration only through a context that refuses undeclared fields.
"""

from __future__ import annotations

import hashlib
import json
import traceback
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, ClassVar, TypeVar

from gap_art.bench.context import Context, UndeclaredReadError
from gap_art.bench.inputs import StudyInputs, numerical_environment
from gap_art.bench.task_results import Failure, TaskResult
from gap_art.runtime import computing_precision

R = TypeVar("R", bound=TaskResult)


class TaskSpec(ABC):
    """What determines one task (a frozen dataclass), how it runs and how it names itself.

    :cvar kind: The task kind, the prefix of its id.
    :cvar records_failures: A failure (its own, or a dependency's) is recorded in its
        metadata instead of stopping the study.
    :cvar announced: Progress output prints a line when it finishes.
    :cvar reads: The configuration fields the task reads through its context (beyond the
        data, which every id covers): hashed into its id, and the only ones its context
        lets it read.
    """

    kind: ClassVar[str] = ""
    reads: ClassVar[tuple[str, ...]] = ("arch", "arch_kwargs")
    records_failures: ClassVar[bool] = True
    announced: ClassVar[bool] = True
    """Progress output gets a line when it finishes (cells and checks do not)."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON form hashed into the task's id."""
        return asdict(self)  # type: ignore[call-overload]

    @abstractmethod
    def describe(self) -> str:
        """One line naming the task for progress output."""

    @abstractmethod
    def run(self, task: Task, deps: Dependencies, ctx: Context) -> TaskResult:
        """Do the work; ``deps`` are the results of ``task``'s dependencies, by role. Returns
        this task's result (small, JSON-able), so any executor can run it in any process that
        sees the results folder."""


class Dependencies:
    """The results of a task's finished dependencies, by the role each plays (``source``,
    ``validation``, ``pool``, ...): a task reads them by name and type, never by position."""

    def __init__(self, roles: Sequence[str], results: Sequence[TaskResult]) -> None:
        self._items = list(zip(roles, results, strict=True))

    def all(self, role: str, kind: type[R]) -> list[R]:
        """Every dependency playing ``role``, in the order given, each a ``kind``."""
        return [_checked(result, role, kind) for name, result in self._items if name == role]

    def get(self, role: str, kind: type[R]) -> R | None:
        """The dependency playing ``role`` (a ``kind``), or ``None`` when the task has none."""
        found = self.all(role, kind)
        if len(found) > 1:
            raise KeyError(f"{len(found)} dependencies play {role!r}: read them with all()")
        return found[0] if found else None

    def one(self, role: str, kind: type[R]) -> R:
        """The one dependency playing ``role``, a ``kind``."""
        result = self.get(role, kind)
        if result is None:
            raise KeyError(f"no dependency plays {role!r}")
        return result

    def __iter__(self) -> Iterator[TaskResult]:
        return iter(result for _, result in self._items)


class DependencyTypeError(TypeError):
    """A task read a dependency as a kind of result it is not: a bug in gap-art's task kinds,
    never a result (it stops the study with its traceback)."""


def _checked(result: TaskResult, role: str, kind: type[R]) -> R:
    if not isinstance(result, kind):
        raise DependencyTypeError(
            f"the {role!r} dependency is a {type(result).__name__}, not a {kind.__name__}"
        )
    return result


DepTasks = Mapping[str, "Task | Sequence[Task]"]
"""A task's dependencies when it is made: each role's task, or tasks in order."""


@dataclass(frozen=True)
class Task:
    """One unit of work: its spec, the ids of the tasks it needs first (with the role each
    plays), and its own id."""

    spec: TaskSpec = field(hash=False)
    deps: tuple[str, ...] = ()
    id: str = ""
    roles: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        return self.spec.kind

    def deps_playing(self, role: str) -> tuple[str, ...]:
        """The ids of the dependencies playing ``role``, in order."""
        return tuple(d for d, r in zip(self.deps, self.roles, strict=True) if r == role)

    def dep(self, role: str) -> str:
        """The id of the one dependency playing ``role``."""
        (found,) = self.deps_playing(role)
        return found

    @classmethod
    def make(cls, spec: TaskSpec, inputs: StudyInputs, deps: DepTasks | None = None) -> Task:
        """The task of ``spec`` in a study of ``inputs``, after ``deps`` (by role)."""
        named = [
            (role, task)
            for role, value in (deps or {}).items()
            for task in ((value,) if isinstance(value, Task) else value)
        ]
        dep_ids, roles = tuple(t.id for _, t in named), tuple(role for role, _ in named)
        payload = json.dumps(
            {
                "kind": spec.kind,
                "spec": spec.to_dict(),
                "deps": dep_ids,
                "roles": roles,
                "inputs": inputs.key(spec.reads),
            },
            sort_keys=True,
        )
        digest = hashlib.sha256(payload.encode()).hexdigest()[:16]
        return cls(spec=spec, deps=dep_ids, id=f"{spec.kind}-{digest}", roles=roles)


def run_task(task: Task, deps: Mapping[str, TaskResult], ctx: Context) -> TaskResult:
    """Run one task at the study's precision and return its result, with the numerical
    environment it ran in; failures of kinds that record them are recorded. ``deps``: every
    dependency's result by id."""
    named = Dependencies(task.roles, [deps[d] for d in task.deps])
    precision = ctx.config.precision
    with computing_precision(precision):
        result = _run(task, named, ctx.reading(task.spec.reads))
    return replace(result, environment=numerical_environment(ctx.device, precision=precision))


def _run(task: Task, results: Dependencies, ctx: Context) -> TaskResult:
    if not task.spec.records_failures:
        return task.spec.run(task, results, ctx)
    failed = next((r for r in results if isinstance(r, Failure)), None)
    if failed is not None:  # a dependency failed: nothing to build on, the row says why
        return Failure(error=failed.error)
    try:
        return task.spec.run(task, results, ctx)
    except (UndeclaredReadError, DependencyTypeError):  # a bug in gap-art's task kind, never a result
        raise
    except Exception as error:  # a crash in one target or cell must not stop the study
        return Failure(error=f"{type(error).__name__}: {error}", traceback=traceback.format_exc())


@dataclass
class Graph:
    """All tasks of a study, keyed by id; the cells (the results' rows) in report order; and
    the extra tasks whose results go into the report beside the rows (sanity checks)."""

    tasks: dict[str, Task]
    cells: list[Task]
    extras: list[Task] = field(default_factory=list)

    def order(self, task: Task) -> list[Task]:
        """``task`` and everything it depends on, dependencies first, each once."""
        seen: dict[str, Task] = {}

        def visit(current: Task) -> None:
            for dep in current.deps:
                if dep not in seen:
                    visit(self.tasks[dep])
            seen.setdefault(current.id, current)

        visit(task)
        return list(seen.values())
