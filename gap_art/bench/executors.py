"""Executors run the task graph: locally in this process, or on Ray."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tqdm.auto import tqdm

from gap_art.bench.graph import Graph, Task
from gap_art.bench.runner import Context, compose_row, run_task

Meta = dict[str, Any]


def _finished(row: Meta | None) -> bool:
    return row is not None and not row.get("error")


def run_local(graph: Graph, ctx: Context, resume: bool = True, progress: bool = True) -> list[Meta]:
    """Run every cell (and, first, what it needs) in this process; returns the rows in order.

    With ``resume``, cached tasks and logged rows are reused; failed ones are retried.
    """
    store = ctx.store
    logged = store.finished_rows() if resume else {}
    metas: dict[str, Meta] = {}

    def ensure(task: Task) -> Meta:
        if task.id not in metas:
            cached = store.read_meta(task.id) if resume else None
            if cached is None or cached.get("error"):
                cached = run_task(task, {d: metas[d] for d in task.deps}, ctx)
                store.write_meta(task.id, cached)
            metas[task.id] = cached
        return metas[task.id]

    rows = []
    todo = [cell for cell in graph.cells if not _finished(logged.get(cell.id))]
    bar = tqdm(total=len(graph.cells), initial=len(graph.cells) - len(todo), desc="cells",
               disable=not progress, unit="cell")  # fmt: skip
    for cell in graph.cells:
        if _finished(logged.get(cell.id)):
            rows.append(logged[cell.id])
            continue
        for task in graph.order(cell)[:-1]:
            ensure(task)
        bar.set_postfix_str(f"{cell.spec['target']} / {cell.spec['attack']}", refresh=False)
        row = _row(graph, cell, metas, ctx)
        store.append_row(row)
        rows.append(row)
        bar.update(1)
    bar.close()
    return rows


def _row(graph: Graph, cell: Task, metas: dict[str, Meta], ctx: Context) -> Meta:
    cell_meta = run_task(cell, {d: metas[d] for d in cell.deps}, ctx)
    target = graph.tasks[cell.deps[1]]
    return compose_row(cell, target, metas[target.id], cell_meta)


EXECUTORS: dict[str, Callable[..., list[Meta]]] = {"local": run_local}
