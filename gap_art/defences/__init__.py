"""gap-art's defences as ART transformers: pruning (GAP and baselines) and int8 quantization."""

from gap_art.defences.pruning import GreedyAdversarialPruning, IrregularPruning
from gap_art.defences.quantization import Int8Classifier, Int8Quantization

__all__ = ["GreedyAdversarialPruning", "Int8Classifier", "Int8Quantization", "IrregularPruning"]
