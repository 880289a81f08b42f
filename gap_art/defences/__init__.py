"""gap-art's defences as ART transformers: pruning (GAP and baselines), int8 quantization,
and ART's own built-in defences (:mod:`~gap_art.defences.art_builtin`) for comparison."""

from gap_art.defences import art_builtin
from gap_art.defences.gap import GreedyAdversarialPruning, pruning_defence
from gap_art.defences.irregular import IrregularPruning
from gap_art.defences.pruning import PruningTransformer
from gap_art.defences.quantization import Int8Classifier, Int8Quantization

__all__ = [
    "GreedyAdversarialPruning",
    "Int8Classifier",
    "Int8Quantization",
    "IrregularPruning",
    "PruningTransformer",
    "art_builtin",
    "pruning_defence",
]
