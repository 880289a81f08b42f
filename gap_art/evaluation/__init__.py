"""Transfer-attack evaluation: craft on a source, measure on compressed targets."""

from gap_art.evaluation.export import format_table, to_csv, to_json
from gap_art.evaluation.metrics import (
    PairedTest,
    class_recall,
    holm,
    mcnemar_exact,
    t_interval,
    topk_correct,
    wilson_interval,
)
from gap_art.evaluation.transfer import (
    TransferResult,
    WhiteboxResult,
    craft_examples,
    evaluate_transfer,
    evaluate_whitebox,
)

__all__ = [
    "PairedTest",
    "TransferResult",
    "class_recall",
    "WhiteboxResult",
    "craft_examples",
    "evaluate_transfer",
    "evaluate_whitebox",
    "format_table",
    "holm",
    "mcnemar_exact",
    "t_interval",
    "to_csv",
    "to_json",
    "topk_correct",
    "wilson_interval",
]
