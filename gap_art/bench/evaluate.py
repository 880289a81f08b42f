"""A study of the user's own files (``gap-art evaluate``): their source crafts, their targets
are scored, and the rows land in a results folder of the bench's schema, so ``gap-art report``
and ``gap-art compare`` read it like any bench study."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gap_art.bench.config import BenchConfig
from gap_art.bench.flags import annotate
from gap_art.bench.report import environment, write_outputs
from gap_art.bench.rows import ROW_FIELDS, Row, as_row, pack_correct
from gap_art.bench.store import Store
from gap_art.bench.target_spec import size_fields
from gap_art.evaluation import evaluate_transfer
from gap_art.evaluation.export import fixed_width_table
from gap_art.settings import AttackSpec

SOURCE_TARGET = "dense"
"""The row name of the source itself, scored on its own examples (white-box), as in the bench."""


@dataclass
class UserTarget:
    """A target file as a study sees it.

    :param classifier: Its ART classifier (a ``BlackBoxClassifier`` for a ``.pt2`` program).
    :param model: Its float model, for compression and size (``None`` for a program).
    :param family: ``pruning`` for a float model, ``quantization`` for a program.
    """

    classifier: Any
    model: torch.nn.Module | None = None
    family: str = "pruning"
    meta: dict[str, Any] = field(default_factory=dict)

    def identity(self, name: str) -> dict[str, Any]:
        """The row fields that describe the target: name, family, compression and size."""
        cost = asdict(size_fields(self.model, False)) if self.model is not None else {}
        ratio = cost.get("compression")
        return {
            "target": name,
            "family": self.family,
            "method": name,
            "requested_compression": round(float(ratio), 2) if ratio else None,
            **cost,
        }


def evaluate_rows(
    attackers: Mapping[str, Any],
    targets: Mapping[str, UserTarget],
    x: np.ndarray,
    y: np.ndarray,
    attacks: Sequence[AttackSpec],
    seed: int,
    progress: Callable[[str], None] | None = None,
) -> list[Row]:
    """One row per target, attack and attacker: examples crafted on each attacker's classifier
    and scored on every target (the first attacker's source included, as ``dense``)."""
    rows: list[Row] = []
    for spec in attacks:
        for threat, attacker in attackers.items():
            if progress is not None:
                progress(f"{spec.attack} from {threat}")
            results = evaluate_transfer(
                attacker,
                {name: t.classifier for name, t in targets.items()},
                x,
                y,
                spec,
                seed=seed,
                progress=False,
                source_name=threat,
            )
            for result in results:
                identity = targets[result.target].identity(result.target)
                metrics = result.to_dict()
                metrics["transfer_correct"] = pack_correct(result.per_example["transfer"])
                metrics["clean_correct"] = pack_correct(result.per_example["clean"])
                cell = {"seed": seed, "attack": spec.attack, "eps": spec.eps, "threat_model": threat}
                rows.append(as_row({**dict.fromkeys(ROW_FIELDS), **metrics, **identity, **cell}))
    return rows


def rows_table(rows: Sequence[Row]) -> str:
    """Every row for the terminal: target, attack, attacker, clean, transfer and success rate."""
    header = ("target", "attack", "attacker", "clean", "transfer", "success", "n")

    def cell(value: Any) -> str:
        return "-" if value is None else f"{value:.3f}"

    lines = [
        (r["target"], r["attack"], r["threat_model"], cell(r.get("clean_accuracy")),
         cell(r.get("transfer_accuracy")), cell(r.get("transfer_success_rate")), str(r.get("n")))
        for r in rows
    ]  # fmt: skip
    return fixed_width_table(header, lines)


def write_evaluation(
    rows: Sequence[Row], config: BenchConfig, out: str | Path, device: str
) -> dict[str, Path]:
    """results.json (the bench's schema), results.csv, report.md and report.html in ``out``."""
    rows = list(rows)
    annotate(rows, {}, config.attack_eps)
    store = Store(out)
    store.root.mkdir(parents=True, exist_ok=True)
    return write_outputs(rows, config, store, environment(device), {})
