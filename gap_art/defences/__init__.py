"""gap-art's defences as ART transformers: pruning (GAP and baselines, irregular and by
channel), int8 quantization, transfer hardening after pruning, and ART's own built-in defences
(:mod:`~gap_art.defences.art_builtin`) for comparison."""

from gap_art.defences import art_builtin
from gap_art.defences.gap import GreedyAdversarialPruning
from gap_art.defences.hardening import StaticSourceAttack, TransferHardening
from gap_art.defences.irregular import IrregularPruning
from gap_art.defences.methods import apply_method, parse_method, pruning_defence
from gap_art.defences.misalignment import GradientMisalignmentFinetuning
from gap_art.defences.pool import (
    PoolAdversarialFinetuning,
    SelfFGSMPoolAdversarialFinetuning,
    TradesPoolAdversarialFinetuning,
)
from gap_art.defences.pruning import PruningTransformer
from gap_art.defences.quantization import Int8Classifier, Int8Quantization
from gap_art.defences.structured import StructuredPruning
from gap_art.defences.transfer_adversarial import (
    SelfFGSMTransferAdversarialFinetuning,
    TransferAdversarialFinetuning,
)

__all__ = [
    "GradientMisalignmentFinetuning",
    "GreedyAdversarialPruning",
    "Int8Classifier",
    "Int8Quantization",
    "IrregularPruning",
    "PoolAdversarialFinetuning",
    "PruningTransformer",
    "SelfFGSMPoolAdversarialFinetuning",
    "SelfFGSMTransferAdversarialFinetuning",
    "StaticSourceAttack",
    "StructuredPruning",
    "TransferAdversarialFinetuning",
    "TradesPoolAdversarialFinetuning",
    "TransferHardening",
    "apply_method",
    "art_builtin",
    "parse_method",
    "pruning_defence",
]
