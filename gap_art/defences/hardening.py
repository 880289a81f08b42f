"""Hardening a (pruned) classifier against examples transferred from its parent.

Both methods fine-tune a copy of the classifier with its pruning masks held, against
examples crafted on *static* models: the frozen parent M that an attacker holds, and any
extra models given. They share :class:`TransferHardening`: the attack on the static models,
the seeded validation split and the early stopping on what the defender can measure (mean of
clean accuracy and accuracy under the parent's attack on held-out data).

- :class:`TransferAdversarialFinetuning`: ART's ``AdversarialTrainer`` with precomputed
  static-source attacks (ensemble adversarial training, Tramer et al., ICLR 2018).
- :class:`~gap_art.defences.misalignment.GradientMisalignmentFinetuning`: penalise the
  alignment of the input gradients with the parent's (GAL / TRS).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
from abc import abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
from art.attacks.attack import EvasionAttack
from art.attacks.evasion import FastGradientMethod
from art.defences.trainer import AdversarialTrainer
from art.defences.transformer.transformer import Transformer
from art.estimators.classification import PyTorchClassifier

from gap_art.attacks import ATTACKS, BACKENDS, clip_range, make_attack
from gap_art.classifiers import check_pytorch_classifier, require_gradients, rewrap_classifier
from gap_art.defences.finetune import FinetuneRecord, validation_split
from gap_art.pruning import clone_module, load_masked_state
from gap_art.runtime import seeded
from gap_art.training import EarlyStopping, Recipe, make_optimizer
from gap_art.validation import (
    check_choice,
    check_inputs,
    check_int,
    check_known_params,
    check_labels,
    check_range,
)

EpochHook = Callable[[int], bool]
"""Called with the number of finished epochs; ``True`` stops training."""


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
            raise ValueError("StaticSourceAttack.generate needs the true labels y")
        labels = np.asarray(y)
        labels = labels.argmax(1) if labels.ndim == 2 else labels
        key = hashlib.sha1(np.ascontiguousarray(x).tobytes() + labels.tobytes()).hexdigest()
        if key not in self._memo:
            self._memo[key] = self._craft(x, labels)
        return self._memo[key]


class TransferHardening(Transformer):
    """Fine-tune a copy of a classifier against examples crafted on static models.

    :param classifier: The ART ``PyTorchClassifier`` to harden (pruned or not; never modified;
        its pruning masks hold in the result).
    :param parent: The frozen model whose examples the result must resist (the dense model
        the classifier was compressed from).
    :param extra_sources: More static ART classifiers to craft on (e.g. independently trained
        models of the same task); the parent is always the first source.
    :param attack: Attack crafted on the static models, by registry name.
    :param eps: Its L-inf budget in input units (default 8/255 of the input range).
    :param eps_step: Step of iterative attacks (default ``eps / 4``).
    :param max_iter: Iterations of the attack.
    :param attack_backend: ``torchattacks`` or ``art``.
    :param epochs: Fine-tuning epochs (the maximum with ``patience``).
    :param patience: Stop after this many epochs without a better validation score (the mean
        of clean accuracy and accuracy under the parent's attack, on a seeded
        ``validation_fraction`` of the data) and keep the best epoch, never the unhardened
        start; ``None`` trains every epoch on all the data.
    :param validation_fraction: Share of the data held out for early stopping.
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
        attack: str = "pgd",
        eps: float | None = None,
        eps_step: float | None = None,
        max_iter: int = 10,
        attack_backend: str = "torchattacks",
        epochs: int = 5,
        patience: int | None = None,
        validation_fraction: float = 0.1,
        lr: float = 1e-3,
        optimizer: str = "adam",
        batch_size: int = 128,
        seed: int = 0,
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
        self._is_fitted = True  # nothing to fit: the sources are trained models
        self._check_params()

    def fit(self, x: np.ndarray, y: np.ndarray | None = None, **kwargs: Any) -> None:
        """Nothing to fit (present for ART's interface): the work happens in ``__call__``."""

    def __call__(
        self,
        x: np.ndarray,
        transformed_classifier: PyTorchClassifier | None = None,
        y: np.ndarray | None = None,
    ) -> PyTorchClassifier:
        """Return a new classifier holding the hardened copy of the model.

        :param x: Training inputs (numpy, the classifier's input shape).
        :param transformed_classifier: If given, the hardened weights and masks are loaded
            into this classifier's model (same architecture), which is returned.
        :param y: True labels of ``x`` (indices or one-hot): required.
        """
        x = check_inputs(x, self.classifier.input_shape)
        if y is None:
            raise ValueError(f"y is required by {type(self).__name__}.__call__: pass the true labels of x")
        labels = check_labels(y, len(x), self.classifier.nb_classes)
        trainee = rewrap_classifier(self.classifier, clone_module(self.classifier.model))
        trainee.set_params(optimizer=make_optimizer(trainee.model, Recipe(self.optimizer, self.lr)))
        sources = [self._static_attack(s) for s in [self.parent, *self.extra_sources]]
        quiet = contextlib.nullcontext() if self.verbose else contextlib.redirect_stderr(io.StringIO())
        with seeded(self.seed), quiet:  # ART's trainers draw progress bars of their own
            self.finetune_record_ = self._train_to_convergence(trainee, x, labels, sources)
        if transformed_classifier is None:
            return trainee
        check_pytorch_classifier(transformed_classifier, "transformed_classifier")
        load_masked_state(transformed_classifier.model, trainee.model.state_dict())
        return transformed_classifier

    def _train_to_convergence(
        self,
        trainee: PyTorchClassifier,
        x: np.ndarray,
        y: np.ndarray,
        sources: list[StaticSourceAttack],
    ) -> FinetuneRecord:
        if self.patience is None:
            self._train(trainee, x, y, sources, lambda epoch: False)
            return FinetuneRecord(self.epochs, self.epochs)
        train, held = validation_split(len(x), self.validation_fraction, self.seed)
        x_held, y_held = x[held], y[held]
        x_held_adv = sources[0].generate(x_held, y_held)
        stopper = EarlyStopping(trainee.model, self.patience)

        def after_epoch(epoch: int) -> bool:
            clean = trainee.predict(x_held, batch_size=1024).argmax(1) == y_held
            transfer = trainee.predict(x_held_adv, batch_size=1024).argmax(1) == y_held
            return stopper.update(epoch, float((clean.mean() + transfer.mean()) / 2))

        self._train(trainee, x[train], y[train], sources, after_epoch)
        stopper.restore()
        return FinetuneRecord(len(stopper.scores), stopper.best_epoch, stopper.scores)

    @abstractmethod
    def _train(
        self,
        trainee: PyTorchClassifier,
        x: np.ndarray,
        y: np.ndarray,
        sources: list[StaticSourceAttack],
        after_epoch: EpochHook,
    ) -> None:
        """Train ``trainee`` in place for up to ``epochs``, calling ``after_epoch`` after each."""

    def _static_attack(self, source: PyTorchClassifier) -> StaticSourceAttack:
        adapter = make_attack(
            self.attack,
            source,
            backend=self.attack_backend,
            eps=self._eps(),
            eps_step=self.eps_step,
            max_iter=self.max_iter,
            batch_size=self.batch_size,
            seed=self.seed,
        )
        return StaticSourceAttack(source, lambda x, y: adapter.generate(x, y, progress=self.verbose))

    def _eps(self) -> float:
        low, high = clip_range(self.classifier)
        return self.eps if self.eps is not None else (high - low) * 8 / 255

    def _check_params(self) -> None:
        low, high = clip_range(self.classifier)
        for name, source in [("parent", self.parent), *(("extra_sources", s) for s in self.extra_sources)]:
            check_pytorch_classifier(source, name)
            require_gradients(source, name)
            if tuple(source.input_shape) != tuple(self.classifier.input_shape):
                raise ValueError(
                    f"{name} takes inputs of shape {source.input_shape}, the classifier "
                    f"{self.classifier.input_shape}: they must classify the same inputs"
                )
        ATTACKS.get(self.attack, "attack")
        check_choice(self.attack_backend, "attack_backend", BACKENDS)
        for name in ("eps", "eps_step"):
            if getattr(self, name) is not None:
                check_range(getattr(self, name), name, 0.0, high - low, low_open=True)
        check_int(self.max_iter, "max_iter", 1)
        check_int(self.epochs, "epochs", 1)
        if self.patience is not None:
            check_int(self.patience, "patience", 1)
        check_range(self.validation_fraction, "validation_fraction", 0.0, 0.5, low_open=True)
        check_range(self.lr, "lr", 0.0, 10.0, low_open=True)
        check_choice(self.optimizer, "optimizer", ("adam", "sgd"))
        check_int(self.batch_size, "batch_size", 1)
        check_int(self.seed, "seed", 0)

    def set_params(self, **kwargs: Any) -> None:
        """Change parameters (ART's convention), refusing unknown names."""
        check_known_params(kwargs, self.params, type(self).__name__)
        super().set_params(**kwargs)


class TransferAdversarialFinetuning(TransferHardening):
    """Fine-tune on clean data mixed with examples crafted on the frozen parent (and any
    extra static models): ART's ``AdversarialTrainer`` with precomputed static-source attacks,
    i.e. ensemble adversarial training (Tramer et al., ICLR 2018) with the parent as the
    static model. Optionally the model's own FGSM joins the rotation, as in the paper.

    Transfer-specific: it resists the parent's examples (accuracy under them may even exceed
    clean accuracy, the label-leaking signature) but not white-box attacks; judge it against
    attackers and attacks it was not trained on.

    :param ratio: Share of each batch replaced by adversarial examples (ART's ``ratio``).
    :param self_attack: ``None``, or ``fgsm`` to add FGSM crafted on the model being trained.
    See :class:`TransferHardening` for the other parameters.
    """

    description = "ART AdversarialTrainer on clean data + PGD from the frozen parent (fine-tuning)"
    params = TransferHardening.params + ["ratio", "self_attack"]

    def __init__(
        self,
        classifier: PyTorchClassifier,
        parent: PyTorchClassifier,
        ratio: float = 0.5,
        self_attack: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.ratio = ratio
        self.self_attack = self_attack
        super().__init__(classifier, parent, **kwargs)

    def _check_params(self) -> None:
        super()._check_params()
        check_range(self.ratio, "ratio", 0.0, 1.0, low_open=True)
        if self.self_attack is not None:
            check_choice(self.self_attack, "self_attack", ("fgsm",))

    def _train(
        self,
        trainee: PyTorchClassifier,
        x: np.ndarray,
        y: np.ndarray,
        sources: list[StaticSourceAttack],
        after_epoch: EpochHook,
    ) -> None:
        attacks: list[EvasionAttack] = list(sources)
        if self.self_attack is not None:
            attacks.append(FastGradientMethod(trainee, eps=self._eps(), batch_size=self.batch_size))
        trainer = AdversarialTrainer(trainee, attacks, ratio=self.ratio)
        for epoch in range(1, self.epochs + 1):
            trainer.fit(x, y, batch_size=self.batch_size, nb_epochs=1)
            if after_epoch(epoch):
                return
