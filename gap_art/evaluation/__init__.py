"""Transfer-attack evaluation: craft on a source, measure on compressed targets."""

from gap_art.evaluation.metrics import topk_correct, wilson_interval
from gap_art.evaluation.transfer import (
    TransferResult,
    WhiteboxResult,
    craft_examples,
    evaluate_transfer,
    evaluate_whitebox,
    format_table,
    to_csv,
    to_json,
)

__all__ = [
    "TransferResult",
    "WhiteboxResult",
    "craft_examples",
    "evaluate_transfer",
    "evaluate_whitebox",
    "format_table",
    "to_csv",
    "to_json",
    "topk_correct",
    "wilson_interval",
]
