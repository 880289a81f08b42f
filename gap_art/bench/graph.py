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
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from gap_art.bench.context import Context, Meta, UndeclaredReadError
from gap_art.bench.inputs import StudyInputs, numerical_environment


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
    def run(self, task: Task, deps: Dependencies, ctx: Context) -> Meta:
        """Do the work; ``deps`` are the metadata of ``task``'s dependencies, by role. Returns
        this task's metadata (small, JSON-able), so any executor can run it in any process
        that sees the results folder."""


class Dependencies:
    """The metadata of a task's finished dependencies, by the role each plays (``source``,
    ``validation``, ``pool``, ...): a task reads them by name, never by position."""

    def __init__(self, roles: Sequence[str], metas: Sequence[Meta]) -> None:
        self._items = list(zip(roles, metas, strict=True))

    def all(self, role: str) -> list[Meta]:
        """Every dependency playing ``role``, in the order given."""
        return [meta for name, meta in self._items if name == role]

    def get(self, role: str) -> Meta | None:
        """The dependency playing ``role``, or ``None`` when the task has none."""
        found = self.all(role)
        if len(found) > 1:
            raise KeyError(f"{len(found)} dependencies play {role!r}: read them with all()")
        return found[0] if found else None

    def one(self, role: str) -> Meta:
        """The one dependency playing ``role``."""
        meta = self.get(role)
        if meta is None:
            raise KeyError(f"no dependency plays {role!r}")
        return meta

    def __iter__(self) -> Iterator[Meta]:
        return iter(meta for _, meta in self._items)


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


def run_task(task: Task, deps: dict[str, Meta], ctx: Context) -> Meta:
    """Run one task and return its metadata, with the numerical environment it ran in;
    failures of kinds that record them are recorded. ``deps``: every dependency's metadata
    by id."""
    named = Dependencies(task.roles, [deps[d] for d in task.deps])
    meta = _run(task, named, ctx.reading(task.spec.reads))
    return {**meta, "environment": numerical_environment(ctx.device)}


def _run(task: Task, metas: Dependencies, ctx: Context) -> Meta:
    if not task.spec.records_failures:
        return task.spec.run(task, metas, ctx)
    failed = next((m for m in metas if m.get("error")), None)
    if failed is not None:  # a dependency failed: nothing to build on, the row says why
        return {"error": failed["error"]}
    try:
        return task.spec.run(task, metas, ctx)
    except UndeclaredReadError:  # a bug in gap-art's task kind, never a result
        raise
    except Exception as error:  # a crash in one target or cell must not stop the study
        return {"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()}


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
