"""Greedy Adversarial Pruning and irregular pruning on top of ``torch.nn.utils.prune``.

Criteria (:mod:`~gap_art.pruning.importance`) say how to rate each weight; the selection
(:mod:`~gap_art.pruning.selection`) turns scores and a compression ratio into ``prune``
masks; :mod:`~gap_art.pruning.masks` installs, copies, loads and measures them. Nothing here
imports ART: the ART defences in :mod:`gap_art.defences` build on this package.
"""

from gap_art.pruning import importance
from gap_art.pruning.importance import (
    accumulate_gradients,
    activation_scores,
    gap_scores,
    magnitude_scores,
    random_scores,
    taylor_scores,
)
from gap_art.pruning.masks import (
    CompressionReport,
    apply_masks,
    clone_module,
    layer_sparsity,
    load_masked_state,
    make_permanent,
    measure_compression,
    other_parameter_count,
)
from gap_art.pruning.methods import (
    GreedyAdversarialUnstructured,
    HighestScoreUnstructured,
    greedy_adversarial_unstructured,
)
from gap_art.pruning.selection import (
    BASES,
    SCOPES,
    compute_masks,
    prune_by_scores,
    select_removed,
    weights_to_keep,
)
from gap_art.pruning.targets import (
    Target,
    classifier_layer,
    excluded_layers,
    prunable_parameters,
    target_names,
)

__all__ = [
    "BASES",
    "SCOPES",
    "CompressionReport",
    "GreedyAdversarialUnstructured",
    "HighestScoreUnstructured",
    "Target",
    "accumulate_gradients",
    "activation_scores",
    "apply_masks",
    "classifier_layer",
    "clone_module",
    "compute_masks",
    "excluded_layers",
    "gap_scores",
    "greedy_adversarial_unstructured",
    "importance",
    "layer_sparsity",
    "load_masked_state",
    "magnitude_scores",
    "make_permanent",
    "measure_compression",
    "other_parameter_count",
    "prunable_parameters",
    "prune_by_scores",
    "random_scores",
    "select_removed",
    "target_names",
    "taylor_scores",
    "weights_to_keep",
]
