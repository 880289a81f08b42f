"""What a run checks before it reuses a results folder: the same configuration, and cached
tasks computed in the same numerical environment (mixing either would put numbers of two
different studies in one report)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gap_art.bench.config import BenchConfig, ConfigError
from gap_art.bench.graph import Graph
from gap_art.bench.inputs import UNKEYED_FIELDS
from gap_art.bench.store import Store


class MixedEnvironmentError(ConfigError):
    """Cached tasks of the results folder ran in another numerical environment."""


def differing_fields(recorded: Mapping[str, Any], config: BenchConfig) -> list[str]:
    """``field: recorded -> new`` for every keyed field where ``config`` differs from the
    configuration a results folder ``recorded``."""
    new = config.to_dict()
    names = sorted((set(recorded) | set(new)) - set(UNKEYED_FIELDS))
    return [f"{n}: {recorded.get(n)!r} -> {new.get(n)!r}" for n in names if recorded.get(n) != new.get(n)]


def check_same_config(store: Store, config: BenchConfig) -> None:
    """Refuse a results folder that holds a study of another configuration, naming the fields
    that differ (its results stay valid: nothing is written)."""
    recorded = store.read_config()
    if recorded is None:
        return
    differences = differing_fields(recorded, config)
    if differences:
        raise ConfigError(
            f"--out {store.root} holds a study of another configuration ({'; '.join(differences)}): "
            "choose another --out for this one, or rerun that study's own settings to resume it"
        )


@dataclass(frozen=True)
class Resumed:
    """What a results folder already holds of a study's graph.

    :param tasks_done: Finished tasks (models, examples, checks) among the ``tasks`` that the
        graph's cells and checks need.
    :param tasks: How many tasks the graph's cells and checks need (the cells aside).
    :param cells_done: Finished cells (results rows) of the graph's ``cells``.
    :param cells: How many cells the graph has.
    :param environments: The numerical environments those ran in, each once.
    """

    tasks_done: int
    tasks: int
    cells_done: int
    cells: int
    environments: list[dict[str, Any]]

    def describe(self) -> str:
        return (
            f"resuming: {self.tasks_done} of {self.tasks} tasks and {self.cells_done} of {self.cells} "
            "cells already done"
        )


def resumed(graph: Graph, store: Store) -> Resumed:
    """What ``store`` already holds of ``graph`` (failed tasks and cells are not done)."""
    cells = {cell.id for cell in graph.cells}
    needed = {task.id for root in graph.cells + graph.extras for task in graph.order(root)}
    tasks = [task_id for task_id in graph.tasks if task_id in needed and task_id not in cells]
    results = [r for r in (store.read_result(task_id) for task_id in tasks) if r is not None]
    rows = [row for cell, row in store.finished_rows().items() if cell in cells]
    found = [r.environment for r in results] + [r.get("environment") for r in rows]
    done = sum(not r.failed for r in results)
    return Resumed(done, len(tasks), len(rows), len(cells), distinct(env for env in found if env))


def distinct(environments: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each environment once, in first-seen order."""
    seen: dict[str, dict[str, Any]] = {}
    for env in environments:
        seen.setdefault(json.dumps(env, sort_keys=True), dict(env))
    return list(seen.values())


def check_environments(found: list[dict[str, Any]], current: dict[str, Any], allow: bool) -> None:
    """Refuse to resume over cached tasks of another numerical environment unless ``allow``."""
    others = [env for env in found if env != current]
    if not others or allow:
        return
    changes = sorted(
        {
            f"{k}: {env.get(k)!r} -> {current.get(k)!r}"
            for env in others
            for k in current
            if env.get(k) != current.get(k)
        }
    )
    raise MixedEnvironmentError(
        f"the results folder holds tasks computed in another numerical environment ({'; '.join(changes)}), "
        "which changes float results: rerun in that environment, use another --out, or pass "
        "--allow-mixed-environment (recorded in results.json)"
    )
