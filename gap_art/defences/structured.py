"""Channel (structured) pruning as an ART transformer: a smaller, faster model, not masks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from art.estimators.classification import PyTorchClassifier
from torch import nn

from gap_art.classifiers import (
    ClassifierModule,
    check_pytorch_classifier,
    require_gradients,
    rewrap_classifier,
)
from gap_art.defences.finetune import finetune
from gap_art.defences.gap import GreedyAdversarialPruning
from gap_art.defences.irregular import IrregularPruning
from gap_art.defences.params import CalibratedPruning
from gap_art.defences.pruning import PruningTransformer
from gap_art.errors import ParameterError
from gap_art.pruning import clone_module, make_permanent
from gap_art.pruning.structured import CHANNEL_CRITERIA, ChannelReport, kept_whole, prune_channels
from gap_art.runtime import seeded_subset
from gap_art.settings import (
    ATTACK_PARAMS,
    GAP_STEPS,
    AttackSpec,
    FinetuneSpec,
    MethodSpec,
    from_params,
)
from gap_art.training import FinetuneRecord, watch
from gap_art.validation import (
    check_choice,
    check_compression,
    check_inputs,
    check_int,
    check_validation_data,
)


class StructuredPruning(CalibratedPruning):
    """Remove whole channels and neurons (Torch-Pruning's dependency graph keeps coupled layers
    consistent; the logits layer stays whole), then fine-tune: the result holds a physically
    smaller model that runs faster, where irregular pruning only zeroes weights.

    :param classifier: A trained ART ``PyTorchClassifier`` (never modified; an irregularly pruned
        one keeps its zeros, its masks folded into the weights).
    :param compression: Parameters of the model before over after (every parameter: the smaller
        model's whole size); the same share of channels leaves every prunable layer.
    :param criterion: Which channels go in each coupled group: ``random``, ``l1`` or ``l2``
        (the norm of their weights in every coupled layer, BatchNorm's included), ``magnitude``
        (the sum of |w| over their Conv/Linear weights), ``taylor`` (|w x g| on clean
        calibration data), or GAP's ``gap-grad``, ``gap-taylor``, ``gap-abs_grad`` (each weight
        scored as :class:`~gap_art.defences.GreedyAdversarialPruning` scores it, summed over
        the channel's weights in every coupled layer; the highest sums go).
    :param nb_calibration: Calibration examples ``taylor`` and GAP's criteria read (a seeded
        subset of ``fit``'s ``x``; ``None``: all of it).
    :param attack: GAP's calibration attack (GAP's criteria only): a registered attack name, an
        :class:`~gap_art.settings.AttackSpec`, or a ready ``torchattacks.Attack`` / ART
        ``EvasionAttack`` (see :class:`~gap_art.defences.GreedyAdversarialPruning`).
    :param eps: Its L-inf budget; default 2/255 of the input range.
    :param eps_step: Its step; default 0.001 of the input range.
    :param max_iter: Its iterations.
    :param attack_backend: ``torchattacks`` or ``art`` for an attack given by name.
    :param finetune_epochs: Fine-tuning epochs after pruning (0: none; with a patience, the
        most).
    :param finetune_lr: Fine-tuning learning rate.
    :param finetune_optimizer: ``adam`` or ``sgd``.
    :param finetune_patience: Stop fine-tuning after this many epochs without a better clean
        accuracy on the validation rows and keep the best epoch; ``None`` trains every epoch.
    :param validation_fraction: Share of ``x`` held out for early stopping when ``__call__``
        gets no ``validation_data``.
    :param batch_size: Examples per calibration and fine-tuning step.
    :param seed: Seeds the ``random`` criterion, the calibration subset, GAP's attack and
        fine-tuning.
    :param verbose: Show progress bars.

    After a call, ``compression_report_`` (a
    :class:`~gap_art.pruning.structured.ChannelReport`: parameters and multiply-adds before and
    after), ``finetune_record_`` and ``excluded_layers_`` (the layers left whole) say what it
    did; after ``fit`` with a GAP criterion, ``scores_`` holds each weight's score.
    """

    params = [
        "compression", "criterion", "nb_calibration", "attack", "eps", "eps_step", "max_iter",
        "attack_backend", "finetune_epochs", "finetune_lr", "finetune_optimizer", "finetune_patience",
        "validation_fraction", "batch_size", "seed", "verbose",
    ]  # fmt: skip
    scoring_params = frozenset(
        ("criterion", "nb_calibration", "attack", "eps", "eps_step", "max_iter", "attack_backend",
         "batch_size", "seed")
    )  # fmt: skip
    """Parameters the fitted scores depend on: changing one drops them (the next call fits again)."""

    def __init__(
        self,
        classifier: PyTorchClassifier,
        compression: float = MethodSpec.compression,
        criterion: str = "l2",
        nb_calibration: int | None = MethodSpec.n_calibration,
        attack: Any = "pgd",
        eps: float | None = None,
        eps_step: float | None = None,
        max_iter: int = GAP_STEPS,
        attack_backend: str = "torchattacks",
        finetune_epochs: int = FinetuneSpec.epochs,
        finetune_lr: float = FinetuneSpec.lr,
        finetune_optimizer: str = FinetuneSpec.optimizer,
        finetune_patience: int | None = FinetuneSpec.patience,
        validation_fraction: float = FinetuneSpec.validation_fraction,
        batch_size: int = FinetuneSpec.batch_size,
        seed: int = MethodSpec.seed,
        verbose: bool = False,
    ) -> None:
        check_pytorch_classifier(classifier)
        super().__init__(classifier)
        self.compression = compression
        self.criterion = criterion
        self.nb_calibration = nb_calibration
        self.attack = attack
        self.eps = eps
        self.eps_step = eps_step
        self.max_iter = max_iter
        self.attack_backend = attack_backend
        self.finetune_epochs = finetune_epochs
        self.finetune_lr = finetune_lr
        self.finetune_optimizer = finetune_optimizer
        self.finetune_patience = finetune_patience
        self.validation_fraction = validation_fraction
        self.batch_size = batch_size
        self.seed = seed
        self.verbose = verbose
        self.scores_ = None
        self.compression_report_: ChannelReport | None = None
        self.finetune_record_: FinetuneRecord | None = None
        self.finetune_records_: list[FinetuneRecord] = []
        self.finetune_monitor: Callable[[int, PyTorchClassifier], None] | None = None
        """Optional hook, called with (epochs done, pruned classifier) before fine-tuning and
        after each epoch (a training curve)."""
        model = classifier.model
        whole = {id(m) for m in kept_whole(model)}
        self.excluded_layers_ = [name for name, m in model.named_modules() if id(m) in whole]
        self._fit_data = None
        self._check_params()

    def fit(self, x: np.ndarray, y: np.ndarray | None = None, **kwargs: Any) -> None:
        """Read the calibration data: GAP's criteria score every weight on it now (``scores_``,
        summed per channel when pruning); ``taylor`` takes its clean-loss gradients on it when
        called.

        :param x: Calibration inputs (numpy, the classifier's input shape).
        :param y: Their labels (indices or one-hot), needed by ``taylor`` and GAP's criteria.
        """
        x = check_inputs(x, self.classifier.input_shape)
        chosen = CHANNEL_CRITERIA[self.criterion]
        self._fit_data = (x, self._labels(x, y, chosen.needs_labels, "fit"))
        self.scores_ = None
        if chosen.weight_criterion is not None:
            scorer = self._scorer(rewrap_classifier(self.classifier, self._folded_model()))
            scorer.fit(*self._calibration())
            self.scores_ = scorer.scores_
        self._is_fitted = True

    def __call__(
        self,
        x: np.ndarray,
        transformed_classifier: PyTorchClassifier | None = None,
        y: np.ndarray | None = None,
        validation_data: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> PyTorchClassifier:
        """Return a new classifier holding the channel-pruned (and fine-tuned) copy of the model.

        :param x: Fine-tuning data (and calibration data when not fitted yet).
        :param transformed_classifier: Not supported: the pruned model has fewer channels than
            any classifier of the original architecture.
        :param y: True labels of ``x`` (indices or one-hot): needed by fine-tuning (and by
            ``taylor`` and GAP's criteria when not fitted yet).
        :param validation_data: ``(x_val, y_val)`` early stopping scores (rows no model trained
            on); ``None``: a seeded ``validation_fraction`` of ``x`` is held out.
        """
        if transformed_classifier is not None:
            raise ParameterError(
                "transformed_classifier is not supported by StructuredPruning: the pruned model "
                "has fewer channels than the original architecture; use the returned classifier"
            )
        x = check_inputs(x, self.classifier.input_shape)
        validation = check_validation_data(
            validation_data, self.classifier.input_shape, self.classifier.nb_classes
        )
        if not self.is_fitted:
            self.fit(x, y)
        labels = self._labels(x, y, self.finetune_epochs > 0, "__call__ (fine-tuning)")
        model = self._folded_model()
        example = torch.zeros((1, *self.classifier.input_shape), device=next(model.parameters()).device)
        gradients = None
        if CHANNEL_CRITERIA[self.criterion].needs_gradients:
            gradients = self._gradients(rewrap_classifier(self.classifier, model))
        report = prune_channels(
            model, example, self.criterion, self.compression, self.seed, gradients, self.scores_
        )
        pruned = rewrap_classifier(self.classifier, model)  # an optimizer over the smaller tensors
        watch(self.finetune_monitor, 0, pruned)
        record = FinetuneRecord(0, 0)
        if self.finetune_epochs > 0 and labels is not None:
            spec = self.finetune_spec()
            record = finetune(pruned, x, labels, spec, self.verbose, self.finetune_monitor, validation)
        self.compression_report_, self.finetune_record_, self.finetune_records_ = report, record, [record]
        return pruned

    def _folded_model(self) -> nn.Module:
        """A copy of the classifier's model, irregular masks folded into zeros, in eval mode."""
        return make_permanent(clone_module(self.classifier.model)).eval()

    def _calibration(self) -> tuple[np.ndarray, np.ndarray | None]:
        """The seeded ``nb_calibration`` rows of what ``fit`` read."""
        assert self._fit_data is not None
        x, y = self._fit_data
        rows = seeded_subset(len(x), self.nb_calibration, self.seed)
        return x[rows], None if y is None else y[rows]

    def _scorer(self, classifier: PyTorchClassifier) -> PruningTransformer:
        """The irregular transformer that scores every weight (the logits layer's too) for a
        summed criterion (GAP's, with its calibration attack, or ``magnitude``): its ``fit`` is
        the scoring; it never prunes."""
        chosen = CHANNEL_CRITERIA[self.criterion]
        assert chosen.weight_criterion is not None
        if not chosen.needs_attack:
            return IrregularPruning(
                classifier, criterion=chosen.weight_criterion, batch_size=self.batch_size,
                prune_classifier=True, seed=self.seed,
            )  # fmt: skip
        return GreedyAdversarialPruning(
            classifier, criterion=chosen.weight_criterion, attack=self.attack, eps=self.eps,
            eps_step=self.eps_step, max_iter=self.max_iter, attack_backend=self.attack_backend,
            batch_size=self.batch_size, prune_classifier=True, seed=self.seed,
        )  # fmt: skip

    def _gradients(self, pruned: PyTorchClassifier) -> Callable[[nn.Module], None]:
        """Cross-entropy on the calibration rows ``fit`` read, backward (through the
        classifier's preprocessing), for the Taylor criterion."""
        x, y = self._calibration()
        if y is None:
            raise ParameterError("criterion 'taylor' needs the labels of the calibration data: pass y to fit")
        module = ClassifierModule(pruned)

        def fill(model: nn.Module) -> None:
            inputs = torch.from_numpy(x).to(pruned.device)
            F.cross_entropy(module(inputs), torch.from_numpy(y).to(pruned.device)).backward()

        return fill

    def _check_params(self) -> None:
        check_compression(self.compression)
        check_choice(self.criterion, "criterion", list(CHANNEL_CRITERIA))
        if self.nb_calibration is not None:
            check_int(self.nb_calibration, "nb_calibration", 1)
        self.finetune_spec()
        chosen = CHANNEL_CRITERIA[self.criterion]
        if chosen.needs_attack:
            self._scorer(self.classifier)  # GAP's checks: the attack's settings, gradients
        elif isinstance(self.attack, str):
            from_params(AttackSpec, self, ATTACK_PARAMS, seed=None)
        if chosen.needs_gradients:
            require_gradients(self.classifier)
