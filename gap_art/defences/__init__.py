"""gap-art's defences as ART transformers: pruning (GAP and baselines) and int8 quantization."""

from gap_art.defences.pruning import GreedyAdversarialPruning, IrregularPruning

__all__ = ["GreedyAdversarialPruning", "IrregularPruning"]
