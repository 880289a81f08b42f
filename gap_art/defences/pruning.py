"""The shared core of gap-art's pruning transformers: score on a copy, turn scores into masks,
fine-tune, rewrap. A classifier goes in, a pruned one comes out."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from art.estimators.classification import PyTorchClassifier
from torch import nn

from gap_art.classifiers import ClassifierModule, check_pytorch_classifier, rewrap_classifier
from gap_art.defences.finetune import finetune
from gap_art.defences.params import CalibratedPruning
from gap_art.errors import ParameterError
from gap_art.pruning import (
    BASES,
    CompressionReport,
    Target,
    clone_module,
    excluded_layers,
    measure_compression,
    other_parameter_count,
    prunable_parameters,
    prune_by_scores,
    target_names,
    weights_to_keep,
)
from gap_art.pruning.importance import IMPORTANCE, Importance, ScoringInputs, make_batches
from gap_art.pruning.importance.base import Batches, Craft
from gap_art.runtime import seeded, seeded_subset
from gap_art.settings import FinetuneSpec, MethodSpec
from gap_art.training import FinetuneRecord, watch
from gap_art.validation import (
    check_choice,
    check_inputs,
    check_validation_data,
)


class PruningTransformer(CalibratedPruning):
    """Shared machinery: score on a copy, turn scores into masks, fine-tune, rewrap.

    Subclasses only name the criterion (:meth:`_importance`); the criterion scores and says
    which end is removed and what it needs (labels, the model on data, an attack).

    :param classifier: A trained ART ``PyTorchClassifier`` (never modified).
    :param compression: Ratio of prunable weights to those kept, at least 1 (2 removes half, 1
        none).
    :param criterion: A registered criterion name or an
        :class:`~gap_art.pruning.importance.Importance` instance.
    :param scope: ``global`` (rank across layers) or ``layer`` (same fraction per layer).
    :param parameters: ``(module, name)`` pairs to prune; by default every Conv and Linear
        weight except the classifier layer's (``excluded_layers_`` names what was left out).
    :param compression_basis: ``prunable`` or ``model`` (the reference's ratio definition).
    :param batch_size: Calibration and fine-tuning batch size.
    :param nb_calibration: Use a seeded subset of this many calibration examples.
    :param finetune_epochs: Epochs of fine-tuning with the masks held (0: none; the maximum
        with ``finetune_patience``).
    :param finetune_lr: Fine-tuning learning rate.
    :param finetune_optimizer: ``adam`` or ``sgd``.
    :param finetune_patience: Stop after this many epochs without a better clean accuracy on a
        seeded validation split, keeping the best epoch (``finetune_record_``); ``None``: all.
    :param validation_fraction: Share of the fine-tuning data held out for early stopping.
    :param prune_classifier: Also prune the layer producing the logits (off, as in the reference:
        a signed-gradient ranking deletes whole output rows of the classes attacks push into).
    :param iterative: Reach ``compression`` in ``rounds`` (geometric), scoring the *current*
        model again before each round and fine-tuning after each.
    :param rounds: Rounds of iterative pruning (each fine-tuned with the settings above).
    :param seed: Seeds the attack's random start, the calibration subset and tie-breaking.
    :param verbose: Show progress bars.
    :param renamed: Deprecated parameter names (:attr:`renamed_params`), accepted with a warning.
    """

    params = [
        "compression", "criterion", "scope", "compression_basis", "batch_size", "nb_calibration",
        "finetune_epochs", "finetune_lr", "finetune_optimizer", "finetune_patience",
        "validation_fraction", "prune_classifier", "iterative", "rounds", "seed", "verbose",
    ]  # fmt: skip
    train_mode = False
    scoring_params = frozenset(("criterion", "batch_size", "nb_calibration", "prune_classifier", "seed"))
    """Parameters the fitted scores depend on: changing one drops them (the others act after
    scoring, and keep them)."""

    def __init__(
        self,
        classifier: PyTorchClassifier,
        compression: float = MethodSpec.compression,
        criterion: str | Importance = MethodSpec.criterion,
        scope: str = MethodSpec.scope,
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
        check_pytorch_classifier(classifier)
        super().__init__(classifier)
        self.parameters = parameters
        self.parameter_names: list[str] = []
        self.excluded_layers_: list[str] = []
        self.compression = compression
        self.criterion = criterion
        self.scope = scope
        self.compression_basis = compression_basis
        self.batch_size = batch_size
        self.nb_calibration = nb_calibration
        self.finetune_epochs = finetune_epochs
        self.finetune_lr = finetune_lr
        self.finetune_optimizer = finetune_optimizer
        self.finetune_patience = finetune_patience
        self.validation_fraction = validation_fraction
        self.prune_classifier = prune_classifier
        self.iterative = iterative
        self.rounds = rounds
        self.seed = seed
        self.verbose = verbose
        self.scores_ = None
        self.compression_report_: CompressionReport | None = None
        self.finetune_record_: FinetuneRecord | None = None
        """Fine-tuning of the (last) round: epochs run and the epoch kept."""
        self.finetune_records_: list[FinetuneRecord] = []
        """Fine-tuning of each round (one entry unless ``iterative``)."""
        self._fit_data = None
        self.finetune_monitor: Callable[[int, PyTorchClassifier], None] | None = None
        """Optional hook, called with (epochs done, pruned classifier) before fine-tuning
        and after each epoch: e.g. to record clean and transfer accuracy along the way."""
        for name, value in self._known_names(renamed).items():
            setattr(self, name, value)
        self._check_params()

    # ART interface -------------------------------------------------------------------------

    def fit(self, x: np.ndarray, y: np.ndarray | None = None, **kwargs: Any) -> None:
        """Score every prunable weight of (a copy of) the classifier's model.

        :param x: Calibration inputs (numpy, the classifier's input shape).
        :param y: Labels, as class indices or one-hot (required by GAP and clean Taylor).
        """
        x = check_inputs(x, self.classifier.input_shape)
        labels = self._labels(x, y, required=self._importance().needs_labels, call="fit")
        self._fit_data = (x, labels)
        x, labels = self._calibration_subset(x, labels)
        model = clone_module(self.classifier.model)
        working = rewrap_classifier(self.classifier, model)
        targets = self._targets(model)
        batches = make_batches(x, labels, self.batch_size, torch.device(working.device))
        with seeded(self.seed):
            scores = self._score(working, targets, batches)
        self.scores_ = dict(zip(self.parameter_names, (s.detach() for s in scores), strict=True))
        self._is_fitted = True

    def __call__(
        self,
        x: np.ndarray,
        transformed_classifier: PyTorchClassifier | None = None,
        y: np.ndarray | None = None,
        validation_data: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> PyTorchClassifier:
        """Return a new classifier holding the pruned (and fine-tuned) copy of the model.

        :param x: Data for fitting (when not fitted yet) and fine-tuning.
        :param transformed_classifier: If given, the pruned weights and masks are loaded into
            this classifier's model (same architecture), which is returned.
        :param y: Labels of ``x`` (indices or one-hot); needed for fine-tuning and GAP.
        :param validation_data: ``(x_val, y_val)``, rows that neither the parent nor the
            fine-tuning trained on, which early stopping scores (as in ART's trainers);
            ``None``: a seeded ``validation_fraction`` of ``x`` is held out instead.
        """
        validation = check_validation_data(
            validation_data, self.classifier.input_shape, self.classifier.nb_classes
        )
        if not self.is_fitted:
            if y is None and self._importance().needs_labels:
                self._labels(x, y, required=True, call="__call__")  # raises, naming the call made
            self.fit(x, y)
        pruned = rewrap_classifier(self.classifier, clone_module(self.classifier.model))
        self.compression_report_ = self._prune_in_rounds(pruned, x, y, validation)
        self.finetune_record_ = self.finetune_records_[-1]
        return self._deliver(pruned, transformed_classifier)

    def _prune_in_rounds(
        self,
        pruned: PyTorchClassifier,
        x: np.ndarray,
        y: object,
        validation: tuple[np.ndarray, np.ndarray] | None,
    ) -> CompressionReport:
        """Prune ``pruned``'s model in place to each round's ratio, re-scoring it before every
        round but the first and fine-tuning it after each (records in ``finetune_records_``)."""
        assert self.scores_ is not None
        model = pruned.model
        targets = self._targets(model)
        scores = [self.scores_[name] for name in self.parameter_names]
        ratios = self.round_compressions()
        self.finetune_records_ = []
        for number, ratio in enumerate(ratios, start=1):
            if number > 1:  # re-score what the pruned, fine-tuned model now relies on
                scores = self._rescore(pruned, targets, number)
            largest = self._importance().removes == "highest"
            report = prune_by_scores(
                model, scores, ratio, targets, self.scope, largest, self.seed, self.compression_basis
            )
            hook = self.finetune_monitor if number == len(ratios) else None
            watch(hook, 0, pruned)
            record = FinetuneRecord(0, 0)
            if self.finetune_epochs > 0:
                x = check_inputs(x, pruned.input_shape)
                labels = self._labels(x, y, required=True, call="__call__ (fine-tuning)")
                assert labels is not None
                spec = self.finetune_spec()
                record = finetune(pruned, x, labels, spec, self.verbose, hook, validation)
                report = measure_compression(model, targets)
            self.finetune_records_.append(record)
        return report

    def _check_params(self) -> None:
        self.method_spec()  # compression, scope, rounds, fine-tuning: validated by the specs
        check_choice(self.compression_basis, "compression_basis", BASES)
        self._check_criterion()
        self._resolve_targets()
        model = self.classifier.model
        targets = self._targets(model)
        n_prunable = sum(getattr(m, n).numel() for m, n in targets)
        weights_to_keep(
            n_prunable, self.compression, self.compression_basis, other_parameter_count(model, targets)
        )
        if self._importance().needs_data and not self.classifier.all_framework_preprocessing:
            raise ParameterError(
                f"classifier has preprocessing that is not a PyTorch operation; {type(self).__name__} "
                "runs its forward pass in PyTorch: use preprocessing=(mean, std) or attach the defence "
                "after pruning"
            )

    def method_spec(self) -> MethodSpec:
        """The settings as a validated :class:`~gap_art.settings.MethodSpec`."""
        criterion = self.criterion
        if isinstance(criterion, Importance):  # an instance: named by its registry name or class
            criterion = criterion.name or type(criterion).__name__
        return MethodSpec(
            str(criterion),
            self.compression,
            self.scope,
            self.iterative,
            self.rounds,
            self.prune_classifier,
            self.nb_calibration,
            finetune=self.finetune_spec(),
            seed=self.seed,
        )

    def round_compressions(self) -> list[float]:
        """The compression reached after each round (see :meth:`MethodSpec.round_compressions
        <gap_art.settings.MethodSpec.round_compressions>`)."""
        return self.method_spec().round_compressions()

    def _rescore(self, pruned: PyTorchClassifier, targets: list[Target], number: int) -> list[torch.Tensor]:
        """Scores of the current (pruned) model on the calibration data given to ``fit``."""
        assert self._fit_data is not None
        x, labels = self._calibration_subset(*self._fit_data)
        batches = make_batches(x, labels, self.batch_size, torch.device(pruned.device))
        with seeded(self.seed + number):
            return [s.detach() for s in self._score(pruned, targets, batches)]

    def _resolve_targets(self) -> None:
        """The prunable tensors' names; a change (e.g. ``set_params(prune_classifier=True)``)
        drops scores computed for the old set."""
        model, nb_classes = self.classifier.model, self.classifier.nb_classes
        targets = prunable_parameters(model, self.parameters, self.prune_classifier, nb_classes)
        names = target_names(model, targets)
        if names != self.parameter_names:
            self.parameter_names, self.scores_, self._is_fitted = names, None, False
        self.excluded_layers_ = excluded_layers(model, targets)

    # Helpers --------------------------------------------------------------------------------

    def _importance(self) -> Importance:
        """The criterion this transformer prunes by: the instance given, or the registered one."""
        if isinstance(self.criterion, Importance):
            return self.criterion
        return IMPORTANCE.get(self._criterion_name(self.criterion), "criterion")()

    def _criterion_name(self, name: str) -> str:
        """The registry name of a criterion given by name."""
        return name

    @abstractmethod
    def _check_criterion(self) -> None:
        """Refuse a criterion this transformer does not prune by, naming ``criterion``."""

    def _calibration_attack(self, classifier: PyTorchClassifier) -> Craft:
        raise NotImplementedError(f"{type(self).__name__} has no calibration attack")

    def _score(
        self, classifier: PyTorchClassifier, targets: list[Target], batches: Batches
    ) -> list[torch.Tensor]:
        """One score tensor per target of ``classifier.model`` (a private copy)."""
        criterion = self._importance()
        inputs = ScoringInputs(
            targets,
            model=ClassifierModule(classifier) if criterion.needs_data else None,
            batches=batches,
            seed=self.seed,
            craft=self._calibration_attack(classifier) if criterion.needs_attack else None,
            train_mode=self.train_mode,
        )
        return criterion.score(inputs)

    def _targets(self, model: nn.Module) -> list[Target]:
        modules = dict(model.named_modules())
        return [(modules[path], name) for path, _, name in (n.rpartition(".") for n in self.parameter_names)]

    def _calibration_subset(
        self, x: np.ndarray, y: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        keep = seeded_subset(len(x), self.nb_calibration, self.seed)
        return x[keep], (y[keep] if y is not None else None)
