"""The shared core of gap-art's pruning transformers: score on a copy, turn scores into masks,
fine-tune, rewrap. A classifier goes in, a pruned one comes out."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from art.defences.transformer.transformer import Transformer
from art.estimators.classification import PyTorchClassifier
from torch import nn

from gap_art.classifiers import (
    ClassifierModule,
    check_pytorch_classifier,
    rewrap_classifier,
)
from gap_art.defences.finetune import FinetuneRecord, finetune
from gap_art.pruning import (
    BASES,
    SCOPES,
    CompressionReport,
    Target,
    clone_module,
    excluded_layers,
    load_masked_state,
    measure_compression,
    other_parameter_count,
    prunable_parameters,
    prune_by_scores,
    target_names,
    weights_to_keep,
)
from gap_art.pruning.importance import Importance, ScoringInputs
from gap_art.pruning.importance.base import Craft
from gap_art.runtime import seeded, seeded_subset
from gap_art.training import Recipe
from gap_art.validation import (
    check_choice,
    check_inputs,
    check_int,
    check_known_params,
    check_labels,
    check_range,
)

Batches = list[tuple[torch.Tensor, torch.Tensor]]


class PruningTransformer(Transformer):
    """Shared machinery: score on a copy, turn scores into masks, fine-tune, rewrap.

    Subclasses only name the criterion (:meth:`_importance`); the criterion scores and says
    which end is removed and what it needs (labels, the model on data, an attack).
    """

    params = [
        "compression",
        "scope",
        "compression_basis",
        "batch_size",
        "nb_calibration",
        "finetune_epochs",
        "finetune_lr",
        "finetune_optimizer",
        "finetune_patience",
        "validation_fraction",
        "prune_classifier",
        "iterative",
        "rounds",
        "seed",
        "verbose",
    ]
    train_mode = False
    selection_params = frozenset(
        (
            "compression",
            "scope",
            "compression_basis",
            "finetune_epochs",
            "finetune_lr",
            "finetune_optimizer",
            "finetune_patience",
            "validation_fraction",
            "iterative",
            "rounds",
            "verbose",
        )
    )
    """Parameters that act after scoring: changing them keeps the fitted scores."""

    def __init__(
        self,
        classifier: PyTorchClassifier,
        compression: float = 2.0,
        scope: str = "global",
        parameters: Sequence[Target] | None = None,
        compression_basis: str = "prunable",
        batch_size: int = 128,
        nb_calibration: int | None = None,
        finetune_epochs: int = 0,
        finetune_lr: float = 1e-3,
        finetune_optimizer: str = "adam",
        finetune_patience: int | None = None,
        validation_fraction: float = 0.1,
        prune_classifier: bool = False,
        iterative: bool = False,
        rounds: int = 3,
        seed: int = 0,
        verbose: bool = False,
    ) -> None:
        check_pytorch_classifier(classifier)
        super().__init__(classifier)
        self.parameters = parameters
        self.parameter_names: list[str] = []
        self.excluded_layers_: list[str] = []
        self.compression = compression
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
        self.scores_: dict[str, torch.Tensor] | None = None
        self.compression_report_: CompressionReport | None = None
        self.finetune_record_: FinetuneRecord | None = None
        """Fine-tuning of the (last) round: epochs run and the epoch kept."""
        self.finetune_records_: list[FinetuneRecord] = []
        """Fine-tuning of each round (one entry unless ``iterative``)."""
        self._fit_data: tuple[np.ndarray, np.ndarray | None] | None = None
        self.finetune_monitor: Callable[[int, PyTorchClassifier], None] | None = None
        """Optional hook, called with (epochs done, pruned classifier) before fine-tuning
        and after each epoch: e.g. to record clean and transfer accuracy along the way."""
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
        batches = _batches(x, labels, self.batch_size, torch.device(working.device))
        with seeded(self.seed):
            scores = self._score(working, targets, batches)
        self.scores_ = dict(zip(self.parameter_names, (s.detach() for s in scores), strict=True))
        self._is_fitted = True

    def __call__(
        self,
        x: np.ndarray,
        transformed_classifier: PyTorchClassifier | None = None,
        y: np.ndarray | None = None,
    ) -> PyTorchClassifier:
        """Return a new classifier holding the pruned (and fine-tuned) copy of the model.

        :param x: Data for fitting (when not fitted yet) and fine-tuning.
        :param transformed_classifier: If given, the pruned weights and masks are loaded into
            this classifier's model (same architecture), which is returned.
        :param y: Labels of ``x`` (indices or one-hot); needed for fine-tuning and GAP.
        """
        if not self.is_fitted:
            if y is None and self._importance().needs_labels:
                self._labels(x, y, required=True, call="__call__")  # raises, naming the call made
            self.fit(x, y)
        assert self.scores_ is not None
        model = clone_module(self.classifier.model)
        targets = self._targets(model)
        pruned = rewrap_classifier(self.classifier, model)
        scores = [self.scores_[name] for name in self.parameter_names]
        ratios = self.round_compressions()
        self.finetune_records_ = []
        for number, ratio in enumerate(ratios, start=1):
            if number > 1:  # re-score what the pruned, fine-tuned model now relies on
                scores = self._rescore(pruned, targets, number)
            report = prune_by_scores(
                model,
                scores,
                ratio,
                parameters=targets,
                scope=self.scope,
                largest=self._importance().removes == "highest",
                seed=self.seed,
                basis=self.compression_basis,
            )
            last = number == len(ratios)
            if last and self.finetune_monitor is not None:
                self.finetune_monitor(0, pruned)
            record = FinetuneRecord(0, 0)
            if self.finetune_epochs > 0:
                record = self._finetune(pruned, x, y, monitor=last)
                report = measure_compression(model, targets)
            self.finetune_records_.append(record)
        self.finetune_record_ = self.finetune_records_[-1]
        self.compression_report_ = report
        if transformed_classifier is None:
            return pruned
        check_pytorch_classifier(transformed_classifier, "transformed_classifier")
        load_masked_state(transformed_classifier.model, model.state_dict())
        return transformed_classifier

    def _check_params(self) -> None:
        if not isinstance(self.compression, (int, float)) or not self.compression > 1:
            raise ValueError(
                f"compression must be a number > 1 (2 removes half the weights), got {self.compression!r}"
            )
        check_choice(self.scope, "scope", SCOPES)
        check_choice(self.compression_basis, "compression_basis", BASES)
        if not isinstance(self.prune_classifier, bool):
            raise ValueError(f"prune_classifier must be True or False, got {self.prune_classifier!r}")
        self._resolve_targets()
        model = self.classifier.model
        targets = self._targets(model)
        n_prunable = sum(getattr(m, n).numel() for m, n in targets)
        weights_to_keep(
            n_prunable,
            self.compression,
            self.compression_basis,
            other_parameter_count(model, targets),
        )
        check_int(self.batch_size, "batch_size", 1)
        if self._importance().needs_data and not self.classifier.all_framework_preprocessing:
            raise ValueError(
                f"classifier has preprocessing that is not a PyTorch operation; {type(self).__name__} "
                "runs its forward pass in PyTorch: use preprocessing=(mean, std) or attach the defence "
                "after pruning"
            )
        if self.nb_calibration is not None:
            check_int(self.nb_calibration, "nb_calibration", 1)
        check_int(self.finetune_epochs, "finetune_epochs", 0)
        check_range(self.finetune_lr, "finetune_lr", 0.0, 10.0, low_open=True)
        check_choice(self.finetune_optimizer, "finetune_optimizer", ("adam", "sgd"))
        if self.finetune_patience is not None:
            check_int(self.finetune_patience, "finetune_patience", 1)
        check_range(self.validation_fraction, "validation_fraction", 0.0, 0.5, low_open=True)
        if not isinstance(self.iterative, bool):
            raise ValueError(f"iterative must be True or False, got {self.iterative!r}")
        check_int(self.rounds, "rounds", 1)
        check_int(self.seed, "seed", 0)

    def round_compressions(self) -> list[float]:
        """The compression reached after each round: ``compression`` at once, or with
        ``iterative`` a geometric schedule of ``rounds`` steps (each removes the same share
        of what remains) ending at ``compression``."""
        if not self.iterative:
            return [float(self.compression)]
        return [float(self.compression) ** (k / self.rounds) for k in range(1, self.rounds + 1)]

    def _rescore(self, pruned: PyTorchClassifier, targets: list[Target], number: int) -> list[torch.Tensor]:
        """Scores of the current (pruned) model on the calibration data given to ``fit``."""
        assert self._fit_data is not None
        x, labels = self._calibration_subset(*self._fit_data)
        batches = _batches(x, labels, self.batch_size, torch.device(pruned.device))
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

    @abstractmethod
    def _importance(self) -> Importance:
        """The criterion this transformer prunes by."""

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

    def _labels(self, x: np.ndarray, y: object, required: bool, call: str) -> np.ndarray | None:
        """The labels of ``x``: ``y``, else those given to :meth:`fit` for the same ``x``."""
        if y is None and self._fit_data is not None and self._fit_data[1] is not None:
            fitted_x, fitted_labels = self._fit_data
            if fitted_x is x or (fitted_x.shape == x.shape and np.array_equal(fitted_x, x)):
                return fitted_labels
        if y is None and not required:
            return None
        if y is None:
            raise ValueError(
                f"y is required by {type(self).__name__}.{call}: pass the true labels of x "
                "(class indices or one-hot)"
            )
        return check_labels(y, len(x), self.classifier.nb_classes)

    def set_params(self, **kwargs: Any) -> None:
        """Change parameters (ART's convention), refusing unknown names; changing one that
        the scores depend on drops the fitted scores, so the next call scores again."""
        check_known_params(kwargs, self.params, type(self).__name__)
        changed = {name for name, value in kwargs.items() if getattr(self, name) != value}
        super().set_params(**kwargs)
        if changed - self.selection_params:
            self.scores_, self._is_fitted = None, False

    def _calibration_subset(
        self, x: np.ndarray, y: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        keep = seeded_subset(len(x), self.nb_calibration, self.seed)
        return x[keep], (y[keep] if y is not None else None)

    def _finetune(
        self, classifier: PyTorchClassifier, x: np.ndarray, y: object, monitor: bool = True
    ) -> FinetuneRecord:
        x = check_inputs(x, classifier.input_shape)
        labels = self._labels(x, y, required=True, call="__call__ (fine-tuning)")
        assert labels is not None
        recipe = Recipe(self.finetune_optimizer, self.finetune_lr, 0.0, "constant", self.batch_size)
        hook = self.finetune_monitor if monitor else None
        return finetune(
            classifier,
            x,
            labels,
            self.finetune_epochs,
            recipe,
            seed=self.seed,
            patience=self.finetune_patience,
            validation_fraction=self.validation_fraction,
            progress=self.verbose,
            monitor=(lambda epoch: hook(epoch, classifier)) if hook is not None else None,
        )


def _batches(x: np.ndarray, y: np.ndarray | None, batch_size: int, device: torch.device) -> Batches:
    x_t = torch.from_numpy(x)
    y_t = torch.from_numpy(y) if y is not None else torch.zeros(len(x), dtype=torch.int64)
    return list(zip(x_t.split(batch_size), y_t.split(batch_size), strict=True))
