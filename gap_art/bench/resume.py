"""What a run checks before it reuses a results folder: the same configuration, and cached
tasks computed in the same numerical environment (mixing either would put numbers of two
different studies in one report)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
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


def cached_environments(graph: Graph, store: Store) -> list[dict[str, Any]]:
    """The numerical environments the folder's finished tasks and cells of ``graph`` ran in."""
    metas = [store.read_meta(task_id) for task_id in graph.tasks]
    rows = store.finished_rows()
    found = [m.get("environment") for m in metas if m] + [r.get("environment") for r in rows.values()]
    return distinct(env for env in found if env)


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
