"""Channel (structured) pruning as an ART transformer: a smaller, faster model, not masks."""

from __future__ import annotations

from collections.abc import Callable

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
from gap_art.defences.params import ArtTransformer
from gap_art.errors import ParameterError
from gap_art.pruning import clone_module, make_permanent
from gap_art.pruning.structured import CHANNEL_CRITERIA, ChannelReport, prune_channels
from gap_art.runtime import seeded_subset
from gap_art.settings import FINETUNE_PARAMS, FinetuneSpec, MethodSpec, from_params
from gap_art.training import FinetuneRecord
from gap_art.validation import (
    check_choice,
    check_inputs,
    check_int,
    check_labels,
    check_range,
    check_validation_data,
)


class StructuredPruning(ArtTransformer):
    """Remove whole channels and neurons (Torch-Pruning's dependency graph keeps coupled layers
    consistent; the logits layer stays whole), then fine-tune: the result holds a physically
    smaller model that runs faster, where irregular pruning only zeroes weights.

    :param classifier: A trained ART ``PyTorchClassifier`` (never modified; an irregularly pruned
        one keeps its zeros, its masks folded into the weights).
    :param compression: Parameters of the model before over after (every parameter: the smaller
        model's whole size); the same share of channels leaves every prunable layer.
    :param criterion: Which channels go in each coupled group: ``random``, ``l1`` or ``l2``
        (the norm of their weights in every coupled layer) or ``taylor`` (|w x g| on clean
        calibration data).
    :param nb_calibration: Calibration examples ``taylor`` reads (a seeded subset of ``x``;
        ``None``: all of it).
    :param finetune_epochs: Fine-tuning epochs after pruning (0: none; with a patience, the
        most).
    :param finetune_lr: Fine-tuning learning rate.
    :param finetune_optimizer: ``adam`` or ``sgd``.
    :param finetune_patience: Stop fine-tuning after this many epochs without a better clean
        accuracy on the validation rows and keep the best epoch; ``None`` trains every epoch.
    :param validation_fraction: Share of ``x`` held out for early stopping when ``__call__``
        gets no ``validation_data``.
    :param batch_size: Examples per fine-tuning step.
    :param seed: Seeds the ``random`` criterion, the calibration subset and fine-tuning.
    :param verbose: Show progress bars.

    After a call, ``report_`` (a :class:`~gap_art.pruning.structured.ChannelReport`: parameters
    and multiply-adds before and after) and ``finetune_record_`` say what it did.
    """

    params = [
        "compression", "criterion", "nb_calibration", "finetune_epochs", "finetune_lr",
        "finetune_optimizer", "finetune_patience", "validation_fraction", "batch_size", "seed",
        "verbose",
    ]  # fmt: skip

    def __init__(
        self,
        classifier: PyTorchClassifier,
        compression: float = MethodSpec.compression,
        criterion: str = "l2",
        nb_calibration: int | None = MethodSpec.n_calibration,
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
        self.finetune_epochs = finetune_epochs
        self.finetune_lr = finetune_lr
        self.finetune_optimizer = finetune_optimizer
        self.finetune_patience = finetune_patience
        self.validation_fraction = validation_fraction
        self.batch_size = batch_size
        self.seed = seed
        self.verbose = verbose
        self.report_: ChannelReport | None = None
        self.finetune_record_: FinetuneRecord | None = None
        self._is_fitted = True  # nothing to fit: the channels are scored when called
        self._check_params()

    def fit(self, x: np.ndarray, y: np.ndarray | None = None, **kwargs: object) -> None:
        """Nothing to fit (present for ART's interface): the work happens in ``__call__``."""

    def __call__(
        self,
        x: np.ndarray,
        transformed_classifier: PyTorchClassifier | None = None,
        y: np.ndarray | None = None,
        validation_data: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> PyTorchClassifier:
        """Return a new classifier holding the channel-pruned (and fine-tuned) copy of the model.

        :param x: Calibration (``taylor``) and fine-tuning data.
        :param transformed_classifier: Not supported: the pruned model has fewer channels than
            any classifier of the original architecture.
        :param y: True labels of ``x`` (indices or one-hot): needed by ``taylor`` and fine-tuning.
        :param validation_data: ``(x_val, y_val)`` early stopping scores (rows no model trained
            on); ``None``: a seeded ``validation_fraction`` of ``x`` is held out.
        """
        if transformed_classifier is not None:
            raise ParameterError(
                "transformed_classifier is not supported by StructuredPruning: the pruned model "
                "has fewer channels than the original architecture; use the returned classifier"
            )
        x = check_inputs(x, self.classifier.input_shape)
        labels = None if y is None else check_labels(y, len(x), self.classifier.nb_classes)
        if labels is None and (CHANNEL_CRITERIA[self.criterion].needs_gradients or self.finetune_epochs > 0):
            raise ParameterError(
                "y is required by StructuredPruning.__call__ (criterion 'taylor' or fine-tuning): "
                "pass the true labels of x"
            )
        validation = check_validation_data(
            validation_data, self.classifier.input_shape, self.classifier.nb_classes
        )
        model = make_permanent(clone_module(self.classifier.model)).eval()  # irregular masks: zeros
        example = torch.zeros((1, *self.classifier.input_shape), device=next(model.parameters()).device)
        gradients = None
        if CHANNEL_CRITERIA[self.criterion].needs_gradients and labels is not None:
            gradients = self._gradients(rewrap_classifier(self.classifier, model), x, labels)
        report = prune_channels(model, example, self.criterion, self.compression, self.seed, gradients)
        pruned = rewrap_classifier(self.classifier, model)  # an optimizer over the smaller tensors
        self.finetune_record_ = FinetuneRecord(0, 0)
        if self.finetune_epochs > 0 and labels is not None:
            self.finetune_record_ = finetune(
                pruned, x, labels, self._finetune_spec(), self.verbose, None, validation
            )
        self.report_ = report
        return pruned

    def _gradients(
        self, pruned: PyTorchClassifier, x: np.ndarray, y: np.ndarray
    ) -> Callable[[nn.Module], None]:
        """Cross-entropy on a seeded calibration subset of ``(x, y)``, backward (through the
        classifier's preprocessing), for the Taylor criterion."""
        rows = seeded_subset(len(x), self.nb_calibration, self.seed)
        module = ClassifierModule(pruned)

        def fill(model: nn.Module) -> None:
            inputs = torch.from_numpy(x[rows]).to(pruned.device)
            F.cross_entropy(module(inputs), torch.from_numpy(y[rows]).to(pruned.device)).backward()

        return fill

    def _finetune_spec(self) -> FinetuneSpec:
        """The fine-tuning settings as one validated spec (errors name this class's parameters)."""
        return from_params(FinetuneSpec, self, FINETUNE_PARAMS)

    def _check_params(self) -> None:
        check_range(self.compression, "compression", 1.0, 1e6, low_open=True)
        check_choice(self.criterion, "criterion", sorted(CHANNEL_CRITERIA))
        if self.nb_calibration is not None:
            check_int(self.nb_calibration, "nb_calibration", 1)
        self._finetune_spec()
        if CHANNEL_CRITERIA[self.criterion].needs_gradients:
            require_gradients(self.classifier)
