"""The row schema: one row per (target, attack, threat model, eps, seed), shared by the runner
that writes rows and the summary, report and plots that read them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from gap_art.evaluation.export import rows_to_csv

Row = dict[str, Any]

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
    "transfer_success_rate",
    "both_correct",
    "n",
    "collapsed_classes",
    "transfer_exceeds_clean",
    "trustworthy",
    "sanity_failures",
    "time_s",
    "error",
)
"""The leading columns of every row; the metrics' intervals and extras follow."""

JSON_ONLY = ("transfer_correct", "validation_curve")
"""Per-example bits and fine-tuning curves (on the validation rows): in results.json, not in the CSV."""

TARGET_FIELDS = (
    "compression",
    "sparsity",
    "size_bytes",
    "size_encoding",
    "time_s",
    "validation_curve",
    "validation_clean_accuracy",
    "validation_transfer_accuracy",
    "finetune_epochs_run",
    "finetune_best_epoch",
    "layer_sparsity",
    "excluded_layers",
    "gap_eps",
    "gap_eps_step",
    "gap_steps",
)
"""What a row takes from its target's metadata."""


def pack_correct(flags: np.ndarray) -> str:
    """Per-example booleans as compact hex (``transfer_correct``)."""
    return np.packbits(flags).tobytes().hex()


def unpack_correct(row: Row) -> np.ndarray:
    """The per-example booleans of a row's ``transfer_correct``."""
    bits = np.frombuffer(bytes.fromhex(row["transfer_correct"]), dtype=np.uint8)
    return np.unpackbits(bits)[: row["n"]].astype(bool)


def results_csv(rows: Sequence[Row]) -> str:
    """The rows as CSV: the schema's columns first, then every other key but the JSON-only
    ones; lists and dicts (class recall, layer sparsity) as JSON text."""
    extra = sorted({key for row in rows for key in row} - set(ROW_FIELDS) - set(JSON_ONLY))
    flat = [{k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in row.items()} for row in rows]
    return rows_to_csv(flat, list(ROW_FIELDS) + extra)
