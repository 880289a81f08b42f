"""The row schema: one row per (target, attack, threat model, eps, seed), shared by the runner
that writes rows and the summary, report and plots that read them."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict, cast

import numpy as np

from gap_art.evaluation.export import rows_to_csv


class Row(TypedDict, total=False):
    """One results row: a target under one crafted set in one seed. Its identity and cost (from
    the target), then the cell's metrics (from :class:`~gap_art.evaluation.TransferResult`,
    whose intervals follow as ``<metric>_ci_low`` / ``<metric>_ci_high``), then the flags the
    study adds across cells. ``None`` marks a metric that does not apply."""

    target: str
    family: str
    method: str
    requested_compression: float
    compression: float | None
    sparsity: float | None
    size_bytes: int | None
    size_encoding: str | None
    seed: int
    attack: str
    eps: float
    threat_model: str
    clean_accuracy: float | None
    transfer_accuracy: float | None
    whitebox_accuracy: float | None
    whitebox_mode: str | None
    worst_case_transfer_accuracy: float | None
    worst_attacker_transfer_accuracy: float | None
    worst_attacker: str | None
    transfer_success_rate: float | None
    both_correct: float | None
    n: int | None
    collapsed_classes: list[int] | None
    collapsed_classes_test: list[int] | None
    transfer_exceeds_clean: bool | None
    transfer_exceeds_clean_test: bool | None
    trustworthy: bool | None
    sanity_failures: list[str] | None
    time_s: float | None
    error: str | None
    # the columns above lead results.csv (ROW_FIELDS); the rest follow
    cell_id: str
    source: str
    float32_bytes: int
    layer_sparsity: dict[str, float]
    excluded_layers: list[str]
    source_clean_accuracy: float | None
    source_whitebox_accuracy: float | None
    n_success_base: int
    clean_top5: float | None
    transfer_top5: float | None
    class_recall: list[float | None]
    class_support: list[int]
    linf_mean: float
    l2_mean: float
    linf_median: float
    l2_median: float
    transfer_correct: str
    clean_correct: str
    whitebox_correct: str
    validation_curve: list[list[float]]
    validation_clean_accuracy: float | None
    validation_transfer_accuracy: float | None
    validation_class_recall: list[float | None]
    validation_class_support: list[int]
    validation_attack: str | None
    validation_clean_correct: str
    validation_transfer_correct: str
    validation_whitebox_correct: str
    gradient_masking: bool | None
    gradient_masking_test: bool | None
    finetune_epochs_run: int
    finetune_best_epoch: int
    gap_eps: float | None
    gap_eps_step: float | None
    gap_steps: int | None
    environment: dict[str, Any]
    cell_time_s: float
    autoattack_accuracy: float | None
    autoattack_n: int | None
    validation_curve_sources: list[dict[str, Any]]
    macs_before: int | None
    macs_after: int | None


ROW_FIELDS = (
    "target",
    "family",
    "method",
    "requested_compression",
    "compression",
    "sparsity",
    "size_bytes",
    "size_encoding",
    "seed",
    "attack",
    "eps",
    "threat_model",
    "clean_accuracy",
    "transfer_accuracy",
    "whitebox_accuracy",
    "whitebox_mode",
    "worst_case_transfer_accuracy",
    "worst_attacker_transfer_accuracy",
    "worst_attacker",
    "transfer_success_rate",
    "both_correct",
    "n",
    "collapsed_classes",
    "collapsed_classes_test",
    "transfer_exceeds_clean",
    "transfer_exceeds_clean_test",
    "trustworthy",
    "sanity_failures",
    "time_s",
    "error",
)
"""The leading columns of every row; the metrics' intervals and extras follow."""


def as_row(data: Mapping[str, Any]) -> Row:
    """A row read back from JSON (results.json, the rows log) or composed from task metadata:
    the one place untyped data becomes a :class:`Row`."""
    return cast(Row, dict(data))


def metric(row: Row, name: str) -> Any:
    """A column chosen at run time (``clean_accuracy``, ``transfer_accuracy_ci_low``, ...), or
    ``None`` where the row has none."""
    return cast(Mapping[str, Any], row).get(name)


JSON_ONLY = (
    "transfer_correct", "clean_correct", "whitebox_correct", "validation_clean_correct",
    "validation_transfer_correct", "validation_whitebox_correct", "validation_curve", "environment",
    "validation_curve_sources",
)  # fmt: skip
"""Per-example bits, fine-tuning curves (on the validation rows) and the numerical environment a
cell ran in: in results.json, not in the CSV."""

TARGET_FIELDS = (
    "compression",
    "sparsity",
    "size_bytes",
    "size_encoding",
    "time_s",
    "validation_curve",
    "validation_curve_sources",
    "validation_clean_accuracy",
    "validation_transfer_accuracy",
    "validation_class_recall",
    "validation_class_support",
    "validation_attack",
    "validation_clean_correct",
    "validation_transfer_correct",
    "validation_whitebox_correct",
    "finetune_epochs_run",
    "finetune_best_epoch",
    "layer_sparsity",
    "excluded_layers",
    "gap_eps",
    "gap_eps_step",
    "gap_steps",
    "macs_before",
    "macs_after",
)
"""What a row takes from its target's metadata."""


def pack_correct(flags: np.ndarray) -> str:
    """Per-example booleans as compact hex (``transfer_correct``, ``clean_correct``)."""
    return np.packbits(flags).tobytes().hex()


def unpack_correct(row: Row, field: str = "transfer_correct") -> np.ndarray:
    """The per-example booleans of a row's ``transfer_correct`` (or ``clean_correct``, or the
    validation rows' ``validation_clean_correct`` and ``validation_transfer_correct``)."""
    bits = np.frombuffer(bytes.fromhex(cast(dict[str, Any], row)[field]), dtype=np.uint8)
    n = sum(row["validation_class_support"]) if field.startswith("validation_") else row["n"]
    return np.unpackbits(bits)[:n].astype(bool)


def results_csv(rows: Sequence[Row]) -> str:
    """The rows as CSV: the schema's columns first, then every other key but the JSON-only
    ones; lists and dicts (class recall, layer sparsity) as JSON text."""
    extra = sorted({key for row in rows for key in row} - set(ROW_FIELDS) - set(JSON_ONLY))
    flat = [{k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in row.items()} for row in rows]
    return rows_to_csv(flat, list(ROW_FIELDS) + extra)
