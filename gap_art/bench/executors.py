"""Executors run the task graph: locally in this process, or on Ray."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from tqdm.auto import tqdm

from gap_art.bench.config import BenchConfig
from gap_art.bench.context import Context
from gap_art.bench.graph import Graph, Task, run_task
from gap_art.bench.rows import Row, as_row
from gap_art.bench.target_spec import TargetSpec
from gap_art.bench.task_results import Failure, TaskResult
from gap_art.bench.tasks import CellSpec
from gap_art.runtime import torch_threads

logger = logging.getLogger(__name__)


def _finished(row: Mapping[str, Any] | None) -> bool:
    return row is not None and not row.get("error")


def _done(result: TaskResult | None) -> bool:
    return result is not None and not result.failed


def run_local(
    graph: Graph, ctx: Context, resume: bool = True, progress: bool = True, cpus_per_task: int | None = None
) -> list[Row]:
    """Run every cell (and, first, what it needs) in this process; returns the rows in order.

    With ``resume``, cached tasks and logged rows are reused; failed ones are retried.
    ``cpus_per_task`` sets torch's threads, as it does for each Ray task.
    """
    with torch_threads(cpus_per_task):
        return _run_local(graph, ctx, resume, progress)


def _run_local(graph: Graph, ctx: Context, resume: bool, progress: bool) -> list[Row]:
    store = ctx.store
    logged = store.finished_rows() if resume else {}
    results: dict[str, TaskResult] = {}
    todo = [c for c in graph.cells if not _finished(logged.get(c.id))]
    needed = {t.id for c in todo + graph.extras for t in graph.order(c)}
    total = len(needed) + len(graph.cells) - len(todo)
    bar = tqdm(total=total, desc="gap-art bench", disable=not progress, unit="task")

    def ensure(task: Task) -> TaskResult:
        if task.id not in results:
            cached = store.read_result(task.id) if resume else None
            if cached is None or cached.failed:
                bar.set_postfix_str(task.spec.describe())
                cached = run_task(task, {d: results[d] for d in task.deps}, ctx)
                store.write_result(task.id, cached)
                if task.spec.announced:
                    logger.info("%s: %s", task.spec.describe(), _outcome(cached))
            results[task.id] = cached
            bar.update(1)
        return results[task.id]

    rows: list[Row] = []
    for cell in graph.cells:
        if _finished(logged.get(cell.id)):
            rows.append(as_row(logged[cell.id]))
            bar.update(1)
            continue
        for task in graph.order(cell)[:-1]:
            ensure(task)
        bar.set_postfix_str(cell.spec.describe())
        row = _row(graph, cell, results, ctx)
        store.append_row(row)
        rows.append(row)
        bar.update(1)
    for extra in graph.extras:
        for task in graph.order(extra):
            ensure(task)
    bar.close()
    return rows


def _outcome(result: TaskResult) -> str:
    return result.error if isinstance(result, Failure) else f"{result.time_s or 0.0:.1f} s"


def compose_row(cell: Task, target: Task, target_result: TaskResult, cell_result: TaskResult) -> Row:
    """A cell task's results row (see :meth:`CellSpec.row <gap_art.bench.tasks.CellSpec.row>`)."""
    assert isinstance(cell.spec, CellSpec) and isinstance(target.spec, TargetSpec)
    return cell.spec.row(cell.id, target.spec, target_result, cell_result)


def _row(graph: Graph, cell: Task, results: dict[str, TaskResult], ctx: Context) -> Row:
    cell_result = run_task(cell, {d: results[d] for d in cell.deps}, ctx)
    target = graph.tasks[cell.dep("target")]
    return compose_row(cell, target, results[target.id], cell_result)


class RayUnavailableError(ImportError):
    """The Ray executor was asked for but Ray is not installed."""


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as error:
        raise RayUnavailableError(
            "the Ray executor needs Ray: install it with pip install 'gap-art[ray]'"
        ) from error
    return ray


def _ray_task(
    task: Task, config: BenchConfig, out: str, threads: int, *dep_results: TaskResult
) -> TaskResult:
    """Body of one Ray task: the same :func:`run_task` the local executor calls."""
    import torch

    from gap_art.bench.store import Store

    torch.set_num_threads(threads)
    ctx = _worker_context(config, Store(out))
    return run_task(task, dict(zip(task.deps, dep_results, strict=True)), ctx)


_WORKER_CONTEXTS: dict[str, Context] = {}


def _worker_context(config: BenchConfig, store: Any) -> Context:
    """One context per worker process and study, so loaded data and targets are reused."""
    key = f"{store.root}|{config.to_dict()}"
    if key not in _WORKER_CONTEXTS:
        _WORKER_CONTEXTS.clear()
        _WORKER_CONTEXTS[key] = Context(config, store)
    return _WORKER_CONTEXTS[key]


def run_ray(
    graph: Graph,
    ctx: Context,
    resume: bool = True,
    progress: bool = True,
    ray_address: str | None = None,
    cpus_per_task: int | None = 1,
    gpus_per_task: float = 0,
    max_retries: int = 2,
) -> list[Row]:
    """Run the graph as Ray tasks: each task once, placed by Ray's scheduler.

    Without ``ray_address`` a local Ray instance sized to this machine is started (and
    stopped afterwards); with one, the driver joins that cluster, whose nodes must all see
    the results folder (a shared filesystem): models and examples travel through it, task
    metadata through Ray's object store. Workers that die are retried ``max_retries`` times.
    """
    ray = _import_ray()
    started = not ray.is_initialized()
    if started:
        ray.init(
            address=ray_address,
            include_dashboard=False,
            log_to_driver=False,
            logging_level="ERROR",
            configure_logging=False,
        )
    try:
        return _run_on_ray(ray, graph, ctx, resume, progress, cpus_per_task, gpus_per_task, max_retries)
    finally:
        if started:
            ray.shutdown()


def _run_on_ray(
    ray: Any,
    graph: Graph,
    ctx: Context,
    resume: bool,
    progress: bool,
    cpus_per_task: int | None,
    gpus_per_task: float,
    max_retries: int,
) -> list[Row]:
    store = ctx.store
    logged = store.finished_rows() if resume else {}
    remote = ray.remote(_ray_task).options(
        num_cpus=cpus_per_task or 1, num_gpus=gpus_per_task, max_retries=max_retries
    )
    config = ctx.config
    threads = cpus_per_task or 1
    refs: dict[str, Any] = {}

    def submit(task: Task) -> Any:
        if task.id not in refs:
            cached = store.read_result(task.id) if resume else None
            if _done(cached):
                refs[task.id] = ray.put(cached)
            else:
                deps = [submit(graph.tasks[d]) for d in task.deps]
                refs[task.id] = remote.remote(task, config, str(store.root), threads, *deps)
        return refs[task.id]

    pending = {submit(cell): cell for cell in graph.cells if not _finished(logged.get(cell.id))}
    extras = {extra.id: submit(extra) for extra in graph.extras}
    rows = {cell.id: as_row(logged[cell.id]) for cell in graph.cells if _finished(logged.get(cell.id))}
    bar = tqdm(total=len(graph.cells), initial=len(rows), desc="cells", disable=not progress, unit="cell")
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        cell = pending.pop(done[0])
        row = _ray_row(ray, graph, cell, refs, store)
        store.append_row(row)
        rows[cell.id] = row
        bar.update(1)
    bar.close()
    for extra, ref in extras.items():
        store.write_result(extra, ray.get(ref))
    return [rows[cell.id] for cell in graph.cells]


def _ray_row(ray: Any, graph: Graph, cell: Task, refs: dict[str, Any], store: Any) -> Row:
    """Collect a finished cell; record its dependencies' results as the local executor does."""
    target = graph.tasks[cell.dep("target")]
    try:
        for dep in graph.order(cell)[:-1]:
            if store.read_result(dep.id) is None:
                store.write_result(dep.id, ray.get(refs[dep.id]))
        target_result: TaskResult = ray.get(refs[target.id])
        cell_result: TaskResult = ray.get(refs[cell.id])
    except Exception as error:  # a task that failed for good: record it in the row
        target_result = cell_result = Failure(error=f"{type(error).__name__}: {error}")
    return compose_row(cell, target, target_result, cell_result)


EXECUTORS: dict[str, Callable[..., list[Row]]] = {"local": run_local, "ray": run_ray}
