"""The classic irregular (unstructured) pruning baselines as an ART transformer."""

from __future__ import annotations

from typing import Any

from art.estimators.classification import PyTorchClassifier

from gap_art.classifiers import require_gradients
from gap_art.defences.pruning import PruningTransformer
from gap_art.pruning import importance
from gap_art.pruning.importance import Importance
from gap_art.validation import check_choice


class IrregularPruning(PruningTransformer):
    """The classic irregular (unstructured) pruning baselines as an ART transformer.

    :param classifier: A trained ART ``PyTorchClassifier`` (never modified).
    :param compression: Ratio of prunable weights to those kept (2 removes half).
    :param method: ``random``, ``magnitude`` (|w|), ``taylor`` (|w x g| on clean data),
        ``activation`` (|w| x mean |input activation|), or any registered criterion that needs
        no attack; the criterion says which end is removed (the lowest, for these four).
    :param scope: ``global`` (rank across layers) or ``layer`` (same fraction per layer).
    :param kwargs: ``parameters``, ``prune_classifier``, ``compression_basis``, ``batch_size``,
        ``nb_calibration``, ``finetune_patience``, ``validation_fraction``,
        ``finetune_epochs``, ``finetune_lr``, ``finetune_optimizer``, ``iterative``, ``rounds``
        (iterative magnitude pruning, for instance), ``seed``, ``verbose``
        as for :class:`GreedyAdversarialPruning`.
    """

    params = PruningTransformer.params + ["method"]

    def __init__(
        self,
        classifier: PyTorchClassifier,
        compression: float = 2.0,
        method: str = "magnitude",
        scope: str = "global",
        **kwargs: Any,
    ) -> None:
        self.method = method
        super().__init__(classifier, compression=compression, scope=scope, **kwargs)

    def _importance(self) -> Importance:
        return importance.get(self.method, "method")

    def _check_params(self) -> None:
        super()._check_params()
        check_choice(self.method, "method", importance.names(adversarial=False))
        if self._importance().needs_data:
            require_gradients(self.classifier)
