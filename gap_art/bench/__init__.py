"""The whole study in one call: ``gap_art.bench.run(config) -> BenchResults``.

Train (or reuse) the source, build every target (GAP and baseline pruning, int8, ART's
defences), craft each attack once on the source, evaluate every (target, attack) cell,
and write results.json, results.csv, report.md and plots into the results folder.
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gap_art.bench.catalogue import catalogue, format_catalogue
from gap_art.bench.compare import compare, flipped_conclusions, format_comparison, format_flips
from gap_art.bench.comparisons import primary_comparisons
from gap_art.bench.config import BenchConfig, ConfigError
from gap_art.bench.config_files import PRESETS, load_config_file, preset
from gap_art.bench.context import Context
from gap_art.bench.executors import EXECUTORS, RayUnavailableError, _import_ray
from gap_art.bench.flags import annotate
from gap_art.bench.goal import Clause, Goal, format_goal, goal_met
from gap_art.bench.graph import Graph, Task
from gap_art.bench.inputs import numerical_environment
from gap_art.bench.report import (
    FinishedStudy,
    check_study_goal,
    environment,
    read_study,
    render,
    write_outputs,
)
from gap_art.bench.resume import check_environments, check_same_config, distinct, resumed
from gap_art.bench.rows import Row, as_row
from gap_art.bench.store import Store
from gap_art.bench.study import build_graph
from gap_art.bench.task_results import SanityResult
from gap_art.errors import ParameterError
from gap_art.evaluation.sanity import SanityCheck
from gap_art.runtime import check_native_precision, resolve_device

logger = logging.getLogger(__name__)


@dataclass
class BenchResults:
    """What a run produced: its rows (one per target, attack and seed) and the files written."""

    out: Path
    rows: list[Row]
    files: dict[str, Path] = field(default_factory=dict)
    wall_time_s: float = 0.0
    checks: dict[int, list[SanityCheck]] = field(default_factory=dict)

    @property
    def failed(self) -> list[Row]:
        """Rows whose cell raised an error (recorded, not hidden)."""
        return [row for row in self.rows if row.get("error")]

    @property
    def failed_checks(self) -> list[SanityCheck]:
        """Sanity checks that failed on some seed's source (their numbers are marked)."""
        return [c for checks in self.checks.values() for c in checks if not c.passed]


def _sanity_checks(graph: Graph, store: Store) -> dict[int, list[SanityCheck]]:
    """The sanity checks of each seed, as the sanity tasks recorded them."""
    checks = {}
    for task in graph.extras:
        result = store.read_result(task.id)
        if isinstance(result, SanityResult):
            checks[result.seed] = list(result.checks)
    return checks


RESULTS_ROOT = Path("gap-art-results")


def default_out(config: BenchConfig, resume: bool = True) -> Path:
    """``./gap-art-results/<timestamp>`` (``-2``, ``-3``, ... when two runs start within the
    same second); with ``resume``, the newest unfinished run of the same configuration there
    instead, so that rerunning an interrupted command without ``--out`` picks up where it
    stopped."""
    if resume and RESULTS_ROOT.is_dir():
        for folder in sorted(RESULTS_ROOT.iterdir(), reverse=True):
            store = Store(folder)
            if store.read_config() == config.to_dict() and not (folder / "results.json").exists():
                return folder
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidates = (RESULTS_ROOT / (stamp if k == 1 else f"{stamp}-{k}") for k in itertools.count(1))
    return next(folder for folder in candidates if not folder.exists())


def run(
    config: BenchConfig | None = None,
    out: str | Path | None = None,
    executor: str = "local",
    resume: bool = True,
    progress: bool = True,
    allow_mixed_environment: bool = False,
    **executor_options: Any,
) -> BenchResults:
    """Run the study described by ``config`` (the ``quick`` preset by default).

    :param out: Results folder; cached models and finished cells there are reused. A folder
        holding a study of another configuration is refused (:class:`ConfigError` naming
        the fields that differ): results already written there stay valid.
    :param executor: ``local`` (this process) or ``ray`` (Ray tasks; needs ``gap-art[ray]``).
    :param executor_options: ``cpus_per_task`` (torch threads per task, both executors);
        for Ray also ``ray_address``, ``gpus_per_task``, ``max_retries``.
    :param resume: Reuse cached tasks and finished cells; ``False`` recomputes everything.
    :param progress: Show one progress bar over the cells.
    :param allow_mixed_environment: Resume even where cached tasks ran in another numerical
        environment (device, torch threads, CPU capability, precision), which changes float
        results; refused by default, and recorded in ``results.json`` when allowed.
    :raises ConfigError: A bad setting, a folder of another study, or ``precision`` ``bfloat16``
        where the device would only emulate it.
    """
    config = (config or preset("quick")).validate()
    if executor not in EXECUTORS:
        raise ConfigError(f"executor must be one of {sorted(EXECUTORS)}, got {executor!r}")
    if executor == "ray":
        _import_ray()  # fail before any work if the extra is missing
    try:
        check_native_precision(config.precision, resolve_device(config.device))
    except ParameterError as error:
        raise ConfigError(str(error)) from None
    store = Store(out if out is not None else default_out(config, resume))
    check_same_config(store, config)
    store.prepare()
    start = time.perf_counter()
    ctx = Context(config, store)
    graph = build_graph(config)
    threads = executor_options.get("cpus_per_task") or (1 if executor == "ray" else None)
    current = numerical_environment(ctx.device, threads, config.precision)
    found: list[dict] = []
    if resume:
        already = resumed(graph, store)
        found = already.environments
        if already.tasks_done or already.cells_done:
            logger.info("%s", already.describe())
    check_environments(found, current, allow_mixed_environment)
    store.write_config(config.to_dict())
    rows = EXECUTORS[executor](graph, ctx, resume=resume, progress=progress, **executor_options)
    rows = [as_row(row) for row in rows]
    checks = _sanity_checks(graph, store)
    annotate(rows, checks, config.attack_eps)
    env = {
        **environment(str(ctx.device)),
        "wall_s": round(time.perf_counter() - start, 1),
        "allow_mixed_environment": allow_mixed_environment,
        "task_environments": distinct([current, *found]),
    }
    files = write_outputs(rows, config, store, env, checks, ctx.data.splits)
    return BenchResults(store.root, rows, files, time.perf_counter() - start, checks)


def plan(config: BenchConfig | None = None) -> dict[str, Any]:
    """What :func:`run` would do, without doing it: the resolved configuration, the number of
    tasks of each kind, the number of cells (result rows) and the primary comparisons the
    report will test (named now, before anything runs)."""
    config = (config or preset("quick")).validate()
    graph = build_graph(config)
    kinds: dict[str, int] = {}
    for task in graph.tasks.values():
        kinds[task.kind] = kinds.get(task.kind, 0) + 1
    primary = [str(comparison) for comparison in primary_comparisons(config)]
    return {
        "config": config.to_dict(),
        "tasks": kinds,
        "cells": len(graph.cells),
        "primary_comparisons": primary,
    }


__all__ = [
    "PRESETS",
    "RayUnavailableError",
    "BenchConfig",
    "BenchResults",
    "ConfigError",
    "Graph",
    "Task",
    "Clause",
    "Goal",
    "build_graph",
    "check_study_goal",
    "FinishedStudy",
    "format_goal",
    "goal_met",
    "catalogue",
    "compare",
    "flipped_conclusions",
    "format_flips",
    "format_catalogue",
    "format_comparison",
    "plan",
    "read_study",
    "render",
    "load_config_file",
    "preset",
    "run",
]
