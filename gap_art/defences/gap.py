"""Greedy Adversarial Pruning (O'Brien Weiss et al., AICAS 2022) as an ART transformer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from art.estimators.classification import PyTorchClassifier

from gap_art.attacks import ATTACKS, BACKENDS, build_attack, clip_range, make_attack
from gap_art.classifiers import require_gradients
from gap_art.defences.pruning import PruningTransformer
from gap_art.errors import ParameterError, ParameterTypeError
from gap_art.pruning.importance import Importance, adversarial_criterion
from gap_art.pruning.importance.base import Craft
from gap_art.pruning.targets import Target
from gap_art.settings import (
    ATTACK_PARAMS,
    GAP_EPS,
    GAP_EPS_STEP,
    GAP_STEPS,
    AttackSpec,
    FinetuneSpec,
    MethodSpec,
    from_params,
)
from gap_art.validation import check_budget, check_choice


class GreedyAdversarialPruning(PruningTransformer):
    """Greedy Adversarial Pruning (O'Brien Weiss et al., AICAS 2022) as an ART transformer.

    Crafts adversarial examples against the model on calibration data, accumulates the
    gradient of the adversarial loss for every prunable weight, and removes the weights with
    the highest scores: those the adversarial examples rely on most. The pruned model
    resists examples transferred from the uncompressed model; it is not a white-box defence.

    :param classifier: A trained ART ``PyTorchClassifier`` (never modified).
    :param compression: Ratio of prunable weights to those kept, at least 1 (2 removes half, 1
        none).
    :param criterion: ``grad`` (signed gradient), ``taylor`` (signed weight x gradient),
        ``abs_grad`` (|gradient|), any registered criterion that needs an attack (by its
        registry name, see :func:`gap_art.pruning.importance.names`), or an
        :class:`~gap_art.pruning.importance.Importance` instance that needs one (it may carry
        settings of its own).
    :param scope: ``global`` (rank across layers) or ``layer`` (same fraction per layer).
    :param attack: A registered attack name (``pgd``, ``fgsm``, ``cw``, ``mifgsm``, ...), an
        :class:`~gap_art.settings.AttackSpec` (then ``eps``, ``eps_step``, ``max_iter`` and
        ``attack_backend`` are its own), or a ready ``torchattacks.Attack`` / ART ``EvasionAttack``.
    :param eps: Attack budget (L-inf) in input units; default 2/255 of the input range.
    :param eps_step: Step of iterative attacks; default 0.001 of the input range.
    :param max_iter: Attack iterations.
    :param attack_backend: ``torchattacks`` or ``art`` for attacks given by name.
    :param train_mode: Take the loss in training mode, as the reference implementation does.
    :param parameters: ``(module, name)`` pairs to prune; by default every Conv and Linear
        weight except the classifier layer's.
    :param compression_basis: ``prunable`` or ``model`` (the reference's ratio definition).
    :param batch_size: Calibration and fine-tuning batch size.
    :param nb_calibration: Use a seeded subset of this many calibration examples.
    :param finetune_epochs: Epochs of fine-tuning with the masks held (0: none; the maximum
        with ``finetune_patience``).
    :param finetune_lr: Fine-tuning learning rate.
    :param finetune_optimizer: ``adam`` or ``sgd``.
    :param finetune_patience: Stop after this many epochs without a better clean accuracy on the
        validation rows, keeping the best epoch; ``None``: every epoch.
    :param validation_fraction: Share of the fine-tuning data held out for early stopping when
        ``__call__`` gets no ``validation_data``.
    :param prune_classifier: Also prune the layer producing the logits (off, as in the reference).
    :param iterative: Reach ``compression`` in ``rounds``, scoring the current model again
        before each round and fine-tuning after each.
    :param rounds: Rounds of iterative pruning.
    :param seed: Seeds the attack's random start, the calibration subset and tie-breaking.
    :param verbose: Show progress bars.
    :param renamed: Deprecated parameter names, accepted with a warning (see
        :class:`~gap_art.defences.pruning.PruningTransformer`).
    """

    params = PruningTransformer.params + [
        "attack",
        "eps",
        "eps_step",
        "max_iter",
        "attack_backend",
        "train_mode",
    ]
    scoring_params = PruningTransformer.scoring_params | {
        "attack", "eps", "eps_step", "max_iter", "attack_backend", "train_mode",
    }  # fmt: skip

    def __init__(
        self,
        classifier: PyTorchClassifier,
        compression: float = 2.0,
        criterion: str | Importance = "grad",
        scope: str = "global",
        attack: Any = "pgd",
        eps: float | None = None,
        eps_step: float | None = None,
        max_iter: int = GAP_STEPS,
        attack_backend: str = "torchattacks",
        train_mode: bool = False,
        parameters: Sequence[Target] | None = None,
        compression_basis: str = "prunable",
        batch_size: int = FinetuneSpec.batch_size,
        nb_calibration: int | None = MethodSpec.n_calibration,
        finetune_epochs: int = FinetuneSpec.epochs,
        finetune_lr: float = FinetuneSpec.lr,
        finetune_optimizer: str = FinetuneSpec.optimizer,
        finetune_patience: int | None = FinetuneSpec.patience,
        validation_fraction: float = FinetuneSpec.validation_fraction,
        prune_classifier: bool = MethodSpec.prune_classifier,
        iterative: bool = MethodSpec.iterative,
        rounds: int = MethodSpec.rounds,
        seed: int = MethodSpec.seed,
        verbose: bool = False,
        **renamed: Any,
    ) -> None:
        self.attack = attack
        self.eps = eps
        self.eps_step = eps_step
        self.max_iter = max_iter
        self.attack_backend = attack_backend
        self.train_mode = train_mode
        super().__init__(
            classifier, compression=compression, criterion=criterion, scope=scope, parameters=parameters,
            compression_basis=compression_basis, batch_size=batch_size, nb_calibration=nb_calibration,
            finetune_epochs=finetune_epochs, finetune_lr=finetune_lr, finetune_optimizer=finetune_optimizer,
            finetune_patience=finetune_patience, validation_fraction=validation_fraction,
            prune_classifier=prune_classifier, iterative=iterative, rounds=rounds, seed=seed, verbose=verbose,
            **renamed,
        )  # fmt: skip

    def _criterion_name(self, name: str) -> str:
        return adversarial_criterion(name)

    def _check_criterion(self) -> None:
        if isinstance(self.criterion, Importance):
            if not self.criterion.needs_attack:
                raise ParameterError(
                    f"criterion {type(self.criterion).__name__} needs no attack: use IrregularPruning"
                )
        else:
            adversarial_criterion(self.criterion)

    def _check_params(self) -> None:
        super()._check_params()
        require_gradients(self.classifier)
        check_choice(self.attack_backend, "attack_backend", BACKENDS)
        if isinstance(self.attack, str):
            ATTACKS.get(self.attack, "attack")
        elif not isinstance(self.attack, AttackSpec):
            import torchattacks
            from art.attacks.attack import EvasionAttack

            if not isinstance(self.attack, (torchattacks.attack.Attack, EvasionAttack)):
                raise ParameterTypeError(
                    f"attack must be a name in {ATTACKS.names()}, a torchattacks.Attack or an "
                    f"ART EvasionAttack, got {type(self.attack).__name__}"
                )
        self.attack_spec()

    def attack_spec(self) -> AttackSpec | None:
        """The calibration attack as a validated spec (``None`` for an attack instance); its
        budget must lie in the classifier's input range (GAP attacks the classifier)."""
        low, high = clip_range(self.classifier)
        check_budget(self.attack if isinstance(self.attack, AttackSpec) else self, high - low)
        if isinstance(self.attack, AttackSpec):
            return self.attack
        if not isinstance(self.attack, str):
            return None
        return from_params(AttackSpec, self, ATTACK_PARAMS, seed=None)  # the transformer's seed governs

    def method_spec(self) -> MethodSpec:
        spec = super().method_spec()
        attack = self.attack_spec()
        return spec if attack is None else replace(spec, calibration_attack=attack)

    def _calibration_attack(self, classifier: PyTorchClassifier) -> Craft:
        spec = self.attack_spec()
        if spec is None:
            return make_attack(self.attack, classifier, batch_size=self.batch_size, seed=None).craft
        low, high = clip_range(classifier)
        span = high - low
        spec = replace(  # the reference's defaults: 2/255 of the range, step 0.001 of it
            spec,
            eps=span * GAP_EPS if spec.eps is None else spec.eps,
            eps_step=span * GAP_EPS_STEP if spec.eps_step is None else spec.eps_step,
        )
        return build_attack(spec, classifier).craft
