"""The classic irregular (unstructured) pruning baselines as an ART transformer."""

from __future__ import annotations

from gap_art.classifiers import require_gradients
from gap_art.defences.pruning import PruningTransformer
from gap_art.errors import ParameterError
from gap_art.pruning import importance
from gap_art.pruning.importance import Importance
from gap_art.validation import check_choice


class IrregularPruning(PruningTransformer):
    """The classic irregular (unstructured) pruning baselines as an ART transformer.

    :param classifier: A trained ART ``PyTorchClassifier`` (never modified).
    :param compression: Ratio of prunable weights to those kept, at least 1 (2 removes half, 1
        none).
    :param criterion: ``random``, ``magnitude`` (|w|), ``taylor`` (|w x g| on clean data),
        ``activation`` (|w| x mean |input activation|), any registered criterion that needs
        no attack, or an :class:`~gap_art.pruning.importance.Importance` instance (which may
        carry settings of its own); the criterion says which end is removed (the lowest, for
        these four).
    :param scope: ``global`` (rank across layers) or ``layer`` (same fraction per layer).
    :param renamed: ``method=``, the deprecated alias of ``criterion`` (warns).

    The other settings (fine-tuning, ``iterative`` and ``rounds`` for iterative magnitude
    pruning, ...) are those of :class:`~gap_art.defences.pruning.PruningTransformer`.
    """

    renamed_params = {"method": "criterion"}

    @property
    def method(self) -> str | Importance:
        """Deprecated alias of ``criterion``."""
        return self.criterion

    def _check_criterion(self) -> None:
        if isinstance(self.criterion, Importance):
            if self.criterion.needs_attack:
                raise ParameterError(
                    f"criterion {type(self.criterion).__name__} needs an attack: use GreedyAdversarialPruning"
                )
        else:
            check_choice(self.criterion, "criterion", importance.names(adversarial=False))
        if self._importance().needs_data:
            require_gradients(self.classifier)
