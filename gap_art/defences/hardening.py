"""Hardening a (pruned) classifier against examples transferred from its parent.

Both methods fine-tune a copy of the classifier with its pruning masks held, against
examples crafted on *static* models: the frozen parent M that an attacker holds, and any
extra models given. They share :class:`TransferHardening`: the attack on the static models,
the seeded validation split and the early stopping on what the defender can measure (mean of
clean accuracy and accuracy under the parent's attack on held-out data).

- :class:`~gap_art.defences.transfer_adversarial.TransferAdversarialFinetuning`: ART's
  ``AdversarialTrainer`` with precomputed static-source attacks (ensemble adversarial
  training, Tramer et al., ICLR 2018).
- :class:`~gap_art.defences.misalignment.GradientMisalignmentFinetuning`: penalise the
  alignment of the input gradients with the parent's (GAL / TRS).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
from abc import abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, ClassVar

import numpy as np
from art.attacks.attack import EvasionAttack
from art.estimators.classification import PyTorchClassifier

from gap_art.attacks import ATTACKS, build_attack, clip_range
from gap_art.classifiers import check_pytorch_classifier, require_gradients, rewrap_classifier
from gap_art.defences.params import ArtTransformer
from gap_art.errors import ParameterError
from gap_art.pruning import clone_module
from gap_art.runtime import seeded
from gap_art.settings import ATTACK_PARAMS, FINETUNE_PARAMS, AttackSpec, FinetuneSpec, from_params
from gap_art.training import (
    EpochHook,
    FinetuneRecord,
    Recipe,
    make_optimizer,
    train_to_convergence,
    watch,
    watched,
)
from gap_art.validation import (
    check_budget,
    check_inputs,
    check_labels,
    check_validation_data,
)


class StaticSourceAttack(EvasionAttack):
    """An attack on a frozen model whose examples are crafted once per input set.

    ART's ``AdversarialTrainer`` precomputes the examples of every attack whose estimator is
    not the model being trained (a static source) at each ``fit``; remembering them by the
    inputs' content lets training run one epoch per ``fit`` (for early stopping) without
    crafting again.

    :param source: The static ART classifier the examples are crafted on.
    :param craft: ``craft(x, y) -> x_adv`` on numpy arrays (a gap-art attack's ``generate``).
    """

    attack_params: list[str] = []
    _estimator_requirements = ()

    def __init__(
        self, source: PyTorchClassifier, craft: Callable[[np.ndarray, np.ndarray], np.ndarray]
    ) -> None:
        super().__init__(estimator=source)
        self._craft = craft
        self._memo: dict[str, np.ndarray] = {}

    def generate(self, x: np.ndarray, y: np.ndarray | None = None, **kwargs: Any) -> np.ndarray:
        if y is None:
            raise ParameterError("StaticSourceAttack.generate needs the true labels y")
        labels = np.asarray(y)
        labels = labels.argmax(1) if labels.ndim == 2 else labels
        key = hashlib.sha1(np.ascontiguousarray(x).tobytes() + labels.tobytes()).hexdigest()
        if key not in self._memo:
            self._memo[key] = self._craft(x, labels)
        return self._memo[key]


def accuracy(classifier: PyTorchClassifier, x: np.ndarray, y: np.ndarray) -> float:
    """The share of ``x`` the classifier labels ``y``: what early stopping scores held-out rows by."""
    return float((classifier.predict(x, batch_size=1024).argmax(1) == y).mean())


@dataclass(frozen=True)
class HardeningRun:
    """One training run of a hardening: the model trained in place, the rows it trains on,
    the attacks on the static sources (the parent first), and the hook called after each
    epoch (``True`` stops)."""

    trainee: PyTorchClassifier
    x: np.ndarray
    y: np.ndarray
    sources: list[StaticSourceAttack]
    after_epoch: EpochHook


HARDENING_STEPS = 10
"""Iterations of the attack a hardening trains against, by default."""
HARDENING_EPOCHS = 5
"""A hardening's fine-tuning epochs, by default (the most, with patience)."""


class TransferHardening(ArtTransformer):
    """Fine-tune a copy of a classifier against examples crafted on static models.

    :param classifier: The ART ``PyTorchClassifier`` to harden (pruned or not; never modified;
        its pruning masks hold in the result).
    :param parent: The frozen model whose examples the result must resist (the dense model
        the classifier was compressed from).
    :param extra_sources: More static ART classifiers to craft on (e.g. independently trained
        models of the same task); the parent is always the first source.
    :param attack: Attack crafted on the static models, by registry name, or an
        :class:`~gap_art.settings.AttackSpec` (then ``eps``, ``eps_step``, ``max_iter`` and
        ``attack_backend`` are its own; its seed is this transformer's).
    :param eps: Its L-inf budget in input units (default 8/255 of the input range).
    :param eps_step: Step of iterative attacks (default ``eps / 4``).
    :param max_iter: Iterations of the attack.
    :param attack_backend: ``torchattacks`` or ``art``.
    :param epochs: Fine-tuning epochs (the maximum with ``patience``).
    :param patience: Stop after this many epochs without a better validation score (the mean
        of clean accuracy and accuracy under the parent's attack, on ``validation_data`` or a
        seeded ``validation_fraction`` of the data) and keep the best epoch, never the unhardened
        start; ``None`` trains every epoch on all the data.
    :param validation_fraction: Share of the data held out for early stopping when
        ``__call__`` gets no ``validation_data``.
    :param lr: Learning rate.
    :param optimizer: ``adam`` or ``sgd``.
    :param batch_size: Examples per step (and per attack batch).
    :param seed: Seeds the attacks' random starts, the validation split and the data order.
    :param verbose: Show progress bars.
    """

    description: ClassVar[str] = ""
    """One line for ``gap-art list``."""
    params = [
        "parent",
        "extra_sources",
        "attack",
        "eps",
        "eps_step",
        "max_iter",
        "attack_backend",
        "epochs",
        "patience",
        "validation_fraction",
        "lr",
        "optimizer",
        "batch_size",
        "seed",
        "verbose",
    ]

    def __init__(
        self,
        classifier: PyTorchClassifier,
        parent: PyTorchClassifier,
        extra_sources: Sequence[PyTorchClassifier] = (),
        attack: str | AttackSpec = "pgd",
        eps: float | None = None,
        eps_step: float | None = None,
        max_iter: int = HARDENING_STEPS,
        attack_backend: str = "torchattacks",
        epochs: int = HARDENING_EPOCHS,
        patience: int | None = None,
        validation_fraction: float = FinetuneSpec.validation_fraction,
        lr: float = FinetuneSpec.lr,
        optimizer: str = FinetuneSpec.optimizer,
        batch_size: int = FinetuneSpec.batch_size,
        seed: int = FinetuneSpec.seed,
        verbose: bool = False,
    ) -> None:
        check_pytorch_classifier(classifier)
        super().__init__(classifier)
        self.parent = parent
        self.extra_sources = list(extra_sources)
        self.attack = attack
        self.eps = eps
        self.eps_step = eps_step
        self.max_iter = max_iter
        self.attack_backend = attack_backend
        self.epochs = epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.lr = lr
        self.optimizer = optimizer
        self.batch_size = batch_size
        self.seed = seed
        self.verbose = verbose
        self.finetune_record_: FinetuneRecord | None = None
        self.finetune_monitor: Callable[[int, PyTorchClassifier], None] | None = None
        """Called with 0 and the unhardened copy before training, then with the number of
        finished epochs after each (early stopping or not): a training curve's hook, as the
        pruning transformers' ``finetune_monitor``."""
        self._is_fitted = True  # nothing to fit: the sources are trained models
        self._check_params()

    @classmethod
    def from_specs(
        cls,
        classifier: PyTorchClassifier,
        parent: PyTorchClassifier,
        attack: AttackSpec,
        finetune: FinetuneSpec,
        verbose: bool = False,
        extra_sources: Sequence[PyTorchClassifier] = (),
    ) -> TransferHardening:
        """The hardening with its attack and training given as specs (its own settings at
        their defaults), against ``parent`` and ``extra_sources``."""
        return cls(
            classifier,
            parent,
            extra_sources=extra_sources,
            attack=attack,
            verbose=verbose,
            **asdict(finetune),
        )  # the spec's fields have the parameters' names

    def attack_spec(self) -> AttackSpec:
        """The attack crafted on the static models, budget filled in for the classifier's range
        (8/255 of it by default), seeded with this transformer's seed."""
        if isinstance(self.attack, AttackSpec):
            spec = replace(self.attack, seed=self.seed)
        else:
            spec = from_params(AttackSpec, self, ATTACK_PARAMS)
        low, high = clip_range(self.classifier)
        return spec.resolve(high - low)

    def finetune_spec(self) -> FinetuneSpec:
        """The training settings as one validated spec (its fields are this class's parameters)."""
        return from_params(FinetuneSpec, self, {name: name for name in FINETUNE_PARAMS})

    def fit(self, x: np.ndarray, y: np.ndarray | None = None, **kwargs: Any) -> None:
        """Nothing to fit (present for ART's interface): the work happens in ``__call__``."""

    def __call__(
        self,
        x: np.ndarray,
        transformed_classifier: PyTorchClassifier | None = None,
        y: np.ndarray | None = None,
        validation_data: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> PyTorchClassifier:
        """Return a new classifier holding the hardened copy of the model.

        :param x: Training inputs (numpy, the classifier's input shape).
        :param transformed_classifier: If given, the hardened weights and masks are loaded
            into this classifier's model (same architecture), which is returned.
        :param y: True labels of ``x`` (indices or one-hot): required.
        :param validation_data: ``(x_val, y_val)``, rows that no model involved trained on,
            which early stopping scores (as in ART's trainers); ``None``: a seeded
            ``validation_fraction`` of ``x`` is held out instead.
        """
        x = check_inputs(x, self.classifier.input_shape)
        if y is None:
            raise ParameterError(
                f"y is required by {type(self).__name__}.__call__: pass the true labels of x"
            )
        labels = check_labels(y, len(x), self.classifier.nb_classes)
        validation = check_validation_data(
            validation_data, self.classifier.input_shape, self.classifier.nb_classes
        )
        trainee = rewrap_classifier(self.classifier, clone_module(self.classifier.model))
        trainee.set_params(optimizer=make_optimizer(trainee.model, Recipe(self.optimizer, self.lr)))
        sources = [self._static_attack(s) for s in [self.parent, *self.extra_sources]]
        quiet = contextlib.nullcontext() if self.verbose else contextlib.redirect_stderr(io.StringIO())
        with seeded(self.seed), quiet:  # ART's trainers draw progress bars of their own
            self.finetune_record_ = self._train_to_convergence(trainee, x, labels, sources, validation)
        return self._deliver(trainee, transformed_classifier)

    def _train_to_convergence(
        self,
        trainee: PyTorchClassifier,
        x: np.ndarray,
        y: np.ndarray,
        sources: list[StaticSourceAttack],
        validation: tuple[np.ndarray, np.ndarray] | None,
    ) -> FinetuneRecord:
        """Early stopping on :meth:`_validation_score` of the validation rows; the unhardened
        start is never kept."""

        monitor = self.finetune_monitor

        def train(xs: np.ndarray, ys: np.ndarray, after_epoch: EpochHook | None) -> None:
            watch(monitor, 0, trainee)
            self._train(HardeningRun(trainee, xs, ys, sources, watched(after_epoch, monitor, trainee)))

        def score(x_held: np.ndarray, y_held: np.ndarray) -> Callable[[], float]:
            return self._validation_score(trainee, x_held, y_held, sources)

        spec = self.finetune_spec()
        return train_to_convergence(trainee.model, x, y, spec, train, score, False, validation)

    def _validation_score(
        self,
        trainee: PyTorchClassifier,
        x_held: np.ndarray,
        y_held: np.ndarray,
        sources: list[StaticSourceAttack],
    ) -> Callable[[], float]:
        """What early stopping maximises on the held-out rows: the mean of clean accuracy and
        accuracy under the parent's attack."""
        x_held_adv = sources[0].generate(x_held, y_held)

        def measure() -> float:
            return (accuracy(trainee, x_held, y_held) + accuracy(trainee, x_held_adv, y_held)) / 2

        return measure

    @abstractmethod
    def _train(self, run: HardeningRun) -> None:
        """Train ``run.trainee`` in place for up to ``epochs``, calling ``run.after_epoch``
        after each."""

    def _static_attack(self, source: PyTorchClassifier) -> StaticSourceAttack:
        adapter = build_attack(self.attack_spec(), source)
        return StaticSourceAttack(source, lambda x, y: adapter.generate(x, y, progress=self.verbose))

    def _eps(self) -> float:
        eps = self.attack_spec().eps
        assert eps is not None
        return eps

    def _check_params(self) -> None:
        low, high = clip_range(self.classifier)
        for name, source in [("parent", self.parent), *(("extra_sources", s) for s in self.extra_sources)]:
            check_pytorch_classifier(source, name)
            require_gradients(source, name)
            if tuple(source.input_shape) != tuple(self.classifier.input_shape):
                raise ParameterError(
                    f"{name} takes inputs of shape {source.input_shape}, the classifier "
                    f"{self.classifier.input_shape}: they must classify the same inputs"
                )
        check_budget(self.attack if isinstance(self.attack, AttackSpec) else self, high - low)
        ATTACKS.get(self.attack_spec().attack, "attack")
        self.finetune_spec()
        if self.epochs < 1:
            raise ParameterError(f"epochs must be an integer >= 1, got {self.epochs!r}")
