"""Greedy Adversarial Pruning (O'Brien Weiss et al., AICAS 2022) as an ART transformer."""

from __future__ import annotations

from typing import Any

from art.estimators.classification import PyTorchClassifier

from gap_art.attacks import ATTACKS, BACKENDS, clip_range, make_attack
from gap_art.classifiers import require_gradients
from gap_art.defences.irregular import IrregularPruning
from gap_art.defences.pruning import PruningTransformer
from gap_art.pruning import importance
from gap_art.pruning.importance import Importance, adversarial_criterion
from gap_art.pruning.importance.base import Craft
from gap_art.validation import check_choice, check_int, check_range


class GreedyAdversarialPruning(PruningTransformer):
    """Greedy Adversarial Pruning (O'Brien Weiss et al., AICAS 2022) as an ART transformer.

    Crafts adversarial examples against the model on calibration data, accumulates the
    gradient of the adversarial loss for every prunable weight, and removes the weights with
    the highest scores: those the adversarial examples rely on most. The pruned model
    resists examples transferred from the uncompressed model; it is not a white-box defence.

    :param classifier: A trained ART ``PyTorchClassifier`` (never modified).
    :param compression: Ratio of prunable weights to those kept (2 removes half).
    :param criterion: ``grad`` (signed gradient), ``taylor`` (signed weight x gradient),
        ``abs_grad`` (|gradient|), or any registered criterion that needs an attack (by its
        registry name, see :func:`gap_art.pruning.importance.names`).
    :param scope: ``global`` (rank across layers) or ``layer`` (same fraction per layer).
    :param attack: A registered attack name (``pgd``, ``fgsm``, ``cw``, ``mifgsm``, ...) or
        a ready ``torchattacks.Attack`` / ART ``EvasionAttack``.
    :param eps: Attack budget (L-inf) in input units; default 2/255 of the input range.
    :param eps_step: Step of iterative attacks; default 0.001 of the input range.
    :param max_iter: Attack iterations.
    :param attack_backend: ``torchattacks`` or ``art`` for attacks given by name.
    :param train_mode: Take the loss in training mode, as the reference implementation does.
    :param parameters: ``(module, name)`` pairs to prune; by default every Conv and Linear
        weight except the classifier layer's (``excluded_layers_`` names what was left out).
    :param compression_basis: ``prunable`` or ``model`` (the reference's ratio definition).
    :param batch_size: Calibration and fine-tuning batch size.
    :param nb_calibration: Use a seeded subset of this many calibration examples.
    :param finetune_epochs: Epochs of fine-tuning with the masks held (0: none); the maximum
        when ``finetune_patience`` is set.
    :param finetune_lr: Fine-tuning learning rate.
    :param finetune_optimizer: ``adam`` or ``sgd``.
    :param finetune_patience: Fine-tune to convergence: stop after this many epochs without a
        better clean accuracy on a seeded validation split of the fine-tuning data, and keep
        the best epoch (``finetune_record_`` says which); ``None`` trains every epoch.
    :param validation_fraction: Share of the fine-tuning data held out for early stopping.
    :param prune_classifier: Also prune the layer producing the logits. Off by default, as in
        the reference implementation: a signed-gradient ranking deletes whole output rows of
        the classes the attack pushes examples into, and such a model cannot predict them.
    :param iterative: Reach ``compression`` in ``rounds`` (a geometric schedule), scoring the
        *current* model again before each round after the first and fine-tuning after each:
        later rounds remove what the pruned model now relies on.
    :param rounds: Rounds of iterative pruning (each fine-tuned with the settings above).
    :param seed: Seeds the attack's random start, the calibration subset and tie-breaking.
    :param verbose: Show progress bars.
    """

    params = PruningTransformer.params + [
        "criterion",
        "attack",
        "eps",
        "eps_step",
        "max_iter",
        "attack_backend",
        "train_mode",
    ]

    def __init__(
        self,
        classifier: PyTorchClassifier,
        compression: float = 2.0,
        criterion: str = "grad",
        scope: str = "global",
        attack: Any = "pgd",
        eps: float | None = None,
        eps_step: float | None = None,
        max_iter: int = 10,
        attack_backend: str = "torchattacks",
        train_mode: bool = False,
        **kwargs: Any,
    ) -> None:
        self.criterion = criterion
        self.attack = attack
        self.eps = eps
        self.eps_step = eps_step
        self.max_iter = max_iter
        self.attack_backend = attack_backend
        self.train_mode = train_mode
        super().__init__(classifier, compression=compression, scope=scope, **kwargs)

    def _check_params(self) -> None:
        super()._check_params()
        require_gradients(self.classifier)
        adversarial_criterion(self.criterion)
        check_choice(self.attack_backend, "attack_backend", BACKENDS)
        if isinstance(self.attack, str):
            ATTACKS.get(self.attack, "attack")
        else:
            import torchattacks
            from art.attacks.attack import EvasionAttack

            if not isinstance(self.attack, (torchattacks.attack.Attack, EvasionAttack)):
                raise TypeError(
                    f"attack must be a name in {ATTACKS.names()}, a torchattacks.Attack or an "
                    f"ART EvasionAttack, got {type(self.attack).__name__}"
                )
        check_int(self.max_iter, "max_iter", 1)
        low, high = clip_range(self.classifier)  # GAP attacks the classifier: it needs its input range
        for name in ("eps", "eps_step"):
            if getattr(self, name) is not None:
                check_range(getattr(self, name), name, 0.0, high - low, low_open=True)

    def _importance(self) -> Importance:
        return importance.get(adversarial_criterion(self.criterion))

    def _calibration_attack(self, classifier: PyTorchClassifier) -> Craft:
        low, high = clip_range(classifier)
        span = high - low
        return make_attack(
            self.attack,
            classifier,
            backend=self.attack_backend,
            eps=self.eps if self.eps is not None else span * 2 / 255,
            eps_step=self.eps_step if self.eps_step is not None else span * 0.001,
            max_iter=self.max_iter,
            batch_size=self.batch_size,
            seed=None,
        ).craft


def pruning_defence(
    classifier: PyTorchClassifier, method: str, compression: float = 2.0, **kwargs: Any
) -> GreedyAdversarialPruning | IrregularPruning:
    """The ART transformer for a registered criterion: :class:`GreedyAdversarialPruning` for
    criteria that need an attack (``kwargs`` may then set ``eps``, ``attack``, ...),
    :class:`IrregularPruning` for the others."""
    if importance.IMPORTANCE.get(method, "method").needs_attack:
        return GreedyAdversarialPruning(classifier, compression, criterion=method, **kwargs)
    return IrregularPruning(classifier, compression, method=method, **kwargs)
