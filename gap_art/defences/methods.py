"""Methods by name: a pruning criterion, optionally pruned in rounds, optionally hardened
against transfer from the parent afterwards.

``gap-grad`` prunes with GAP's signed gradient; ``magnitude+iter`` prunes by magnitude in
rounds; ``gap-grad+tat`` prunes with GAP and fine-tunes with
:class:`~gap_art.defences.hardening.TransferAdversarialFinetuning` (``+tat-fgsm``: with the
model's own FGSM too); ``magnitude+gal`` with
:class:`~gap_art.defences.misalignment.GradientMisalignmentFinetuning`; ``magnitude+pool``
with :class:`~gap_art.defences.pool.PoolAdversarialFinetuning` (``+pool-fgsm``: with the
model's own FGSM as one more source; ``+pool-trades``: and a TRADES term). ``gap-iter`` is short
for ``gap-grad+iter``. Hardenings are a registry (entry-point group ``gap_art.hardening``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from art.estimators.classification import PyTorchClassifier

from gap_art.attacks import clip_range
from gap_art.classifiers import rewrap_classifier
from gap_art.defences.art_builtin import ART_DEFENCES, TrainedDefence, TrainingData
from gap_art.defences.gap import GreedyAdversarialPruning
from gap_art.defences.hardening import TransferHardening
from gap_art.defences.irregular import IrregularPruning
from gap_art.defences.misalignment import GradientMisalignmentFinetuning
from gap_art.defences.pool import (
    PoolAdversarialFinetuning,
    SelfFGSMPoolAdversarialFinetuning,
    TradesPoolAdversarialFinetuning,
)
from gap_art.defences.structured import StructuredPruning
from gap_art.defences.transfer_adversarial import (
    SelfFGSMTransferAdversarialFinetuning,
    TransferAdversarialFinetuning,
)
from gap_art.errors import ParameterError
from gap_art.pruning import CompressionReport
from gap_art.pruning.importance import IMPORTANCE
from gap_art.pruning.structured import CHANNEL_CRITERIA, ChannelReport
from gap_art.registry import Registry, did_you_mean
from gap_art.settings import ALIASES, CHANNEL, ITERATIVE, PRETRAINING, STRUCTURE, MethodSpec
from gap_art.training import FinetuneRecord
from gap_art.validation import check_choice

HARDENINGS: Registry[type[TransferHardening]] = Registry("hardening", "gap_art.hardening")
HARDENINGS.register("tat")(TransferAdversarialFinetuning)
HARDENINGS.register("gal")(GradientMisalignmentFinetuning)
HARDENINGS.register("tat-fgsm")(SelfFGSMTransferAdversarialFinetuning)
HARDENINGS.register("pool")(PoolAdversarialFinetuning)
HARDENINGS.register("pool-fgsm")(SelfFGSMPoolAdversarialFinetuning)
HARDENINGS.register("pool-trades")(TradesPoolAdversarialFinetuning)


def trains_on_a_pool(hardening: str | None) -> bool:
    """Whether the hardening registered as ``hardening`` trains against a pool of static
    sources (``pool``, ``pool-fgsm``, ``pool-trades``), which a study then builds for it."""
    return hardening is not None and issubclass(HARDENINGS.get(hardening), PoolAdversarialFinetuning)


def parse_method(name: str, param: str = "method", **settings: object) -> MethodSpec:
    """The :class:`~gap_art.settings.MethodSpec` of a method name, its criterion and
    hardening checked against the registries; an unknown part raises ``ValueError`` naming
    ``param``. ``settings`` fill the spec's other fields."""
    return check_method(MethodSpec.parse(name, param, **settings), param, name)


def check_method(spec: MethodSpec, param: str = "method", name: str | None = None) -> MethodSpec:
    """``spec`` if its criterion (a channel criterion for channel pruning) and hardening are
    registered, else a ``ValueError``."""
    if spec.structure == CHANNEL:
        check_choice(
            spec.criterion, f"{param}: the criterion of {name or spec.name!r}", list(CHANNEL_CRITERIA)
        )
    else:
        IMPORTANCE.get(spec.criterion, param)
    if spec.pretraining is not None:
        _pretraining_defence(spec.pretraining, param)
    if spec.hardening is not None and spec.hardening not in HARDENINGS.names():
        known = [ITERATIVE, *HARDENINGS.names()]
        raise ParameterError(
            f"{param}: unknown modifier {spec.hardening!r} in {name or spec.name!r}; known modifiers: "
            f"{known}{did_you_mean(spec.hardening, known)}"
        )
    return spec


def _pretraining_defence(name: str, param: str = "method") -> TrainedDefence:
    """The ART trainer a method runs on the parent before pruning: one that fine-tunes it."""
    fine_tuners = [n for n, cls in ART_DEFENCES if issubclass(cls, TrainedDefence) and not cls.from_scratch]
    if name not in fine_tuners:
        raise ParameterError(
            f"{param}: the defence before '{PRETRAINING}' must be an ART trainer that fine-tunes the parent, "
            f"one of {fine_tuners}, got {name!r}{did_you_mean(name, fine_tuners)}"
        )
    defence = ART_DEFENCES.get(name)()
    assert isinstance(defence, TrainedDefence)
    return defence


def pretrain(
    spec: MethodSpec,
    classifier: PyTorchClassifier,
    x: np.ndarray,
    y: np.ndarray,
    validation_data: tuple[np.ndarray, np.ndarray] | None = None,
) -> PyTorchClassifier:
    """The parent defended by ``spec.pretraining`` (a copy; ``classifier`` is not modified), or
    ``classifier`` itself when the method names none."""
    if spec.pretraining is None:
        return classifier
    training = replace(spec.finetune, epochs=max(1, spec.finetune.epochs))
    low, high = clip_range(classifier)
    eps = spec.hardening_attack.resolve(high - low).eps
    assert eps is not None
    data = TrainingData(x, y, classifier.model, training, eps, validation_data)
    return rewrap_classifier(classifier, _pretraining_defence(spec.pretraining).train(classifier, data))


def pruning_defence(
    classifier: PyTorchClassifier, spec: MethodSpec, verbose: bool = False
) -> GreedyAdversarialPruning | IrregularPruning | StructuredPruning:
    """The ART transformer that prunes as ``spec`` says: :class:`GreedyAdversarialPruning`
    for criteria that need an attack (``spec.calibration_attack``), :class:`IrregularPruning`
    for the others, :class:`StructuredPruning` for ``structure="channel"``. The hardening, if
    any, is :func:`apply_method`'s."""
    tuning = spec.finetune
    if spec.structure == CHANNEL:
        return StructuredPruning(
            classifier, spec.compression, spec.criterion, spec.n_calibration, spec.calibration_attack,
            finetune_epochs=tuning.epochs, finetune_lr=tuning.lr, finetune_optimizer=tuning.optimizer,
            finetune_patience=tuning.patience, validation_fraction=tuning.validation_fraction,
            batch_size=tuning.batch_size, seed=spec.seed, verbose=verbose,
        )  # fmt: skip
    common: dict[str, Any] = {
        "compression": spec.compression,
        "criterion": spec.criterion,
        "scope": spec.scope,
        "batch_size": tuning.batch_size,
        "nb_calibration": spec.n_calibration,
        "finetune_epochs": tuning.epochs,
        "finetune_lr": tuning.lr,
        "finetune_optimizer": tuning.optimizer,
        "finetune_patience": tuning.patience,
        "validation_fraction": tuning.validation_fraction,
        "prune_classifier": spec.prune_classifier,
        "iterative": spec.iterative,
        "rounds": spec.rounds,
        "seed": spec.seed,
        "verbose": verbose,
    }
    if IMPORTANCE.get(spec.criterion, "criterion").needs_attack:
        return GreedyAdversarialPruning(classifier, attack=spec.calibration_attack, **common)
    return IrregularPruning(classifier, **common)


def needs_attack(spec: MethodSpec) -> bool:
    """Whether the method's criterion crafts attacks to score (GAP's family, per weight or per
    channel)."""
    if spec.structure == CHANNEL:
        return CHANNEL_CRITERIA[spec.criterion].needs_attack
    return IMPORTANCE.get(spec.criterion).needs_attack


def method_catalogue() -> dict[str, str]:
    """Every criterion, the modifiers and the aliases, with one line each."""
    entries = {name: cls.description for name, cls in IMPORTANCE}
    entries[f"<criterion>+{ITERATIVE}"] = "prune in rounds, re-scoring the current model before each"
    entries[f"<channel criterion>{STRUCTURE}{CHANNEL}"] = (
        f"remove whole channels (a smaller, faster model): {', '.join(CHANNEL_CRITERIA)}"
    )
    entries.update({f"<criterion>+{name}": cls.description for name, cls in HARDENINGS})
    entries.update({alias: f"short for {full}" for alias, full in ALIASES.items()})
    entries[f"<ART trainer>{PRETRAINING}<method>"] = (
        "train the parent with ART's defence first, then compress it"
    )
    return entries


@dataclass(frozen=True)
class Compressed:
    """A model a method produced, with what its fine-tuning did.

    :param classifier: The pruned (and hardened) classifier.
    :param records: Fine-tuning of each pruning round, then of the hardening if any.
    :param excluded_layers: Layers the pruning left dense.
    :param report: The compression achieved (masks hold through the hardening): over the
        prunable weights, or, for channel pruning, parameters and multiply-adds before and after.
    """

    classifier: PyTorchClassifier
    records: list[FinetuneRecord]
    excluded_layers: list[str]
    report: CompressionReport | ChannelReport


def apply_method(
    spec: MethodSpec,
    classifier: PyTorchClassifier,
    x_calibration: np.ndarray,
    y_calibration: np.ndarray | None,
    x: np.ndarray,
    y: np.ndarray,
    finetune_monitor: Callable[[int, PyTorchClassifier], None] | None = None,
    extra_sources: Sequence[PyTorchClassifier] = (),
    validation_data: tuple[np.ndarray, np.ndarray] | None = None,
) -> Compressed:
    """Run the method ``spec`` describes on ``classifier`` (the parent; never modified).

    With ``spec.pretraining``, the ART defence trains a copy of the parent first and the method
    compresses that. With a hardening, the pruned model is not clean-fine-tuned first: the
    hardening, trained as ``spec.finetune`` says (at least one epoch) against
    ``spec.hardening_attack`` crafted on the parent, is its fine-tuning.

    :param x_calibration: Calibration inputs (scoring; GAP's attacks).
    :param x: Training data for fine-tuning and the hardening.
    :param finetune_monitor: Called with the number of finished epochs and the model after
        each epoch of the last training (and with 0 before it): the clean fine-tuning of the
        last pruning round, or the hardening.
    :param extra_sources: Static models the hardening trains against beside the parent (the
        pool of ``+pool``: the defender's own replicas, an independent and a robust model).
    :param validation_data: ``(x_val, y_val)`` every early stopping scores: rows neither the
        parent nor any fine-tuning trained on (``None``: each holds out a seeded share of ``x``).
    """
    spec = check_method(spec)
    parent, classifier = classifier, pretrain(spec, classifier, x, y, validation_data)
    pruning = spec if spec.hardening is None else replace(spec, finetune=replace(spec.finetune, epochs=0))
    defence = pruning_defence(classifier, pruning)
    if spec.hardening is None:
        defence.finetune_monitor = finetune_monitor
    defence.fit(x_calibration, y_calibration)
    pruned = defence(x, y=y, validation_data=validation_data)
    records = list(defence.finetune_records_)
    if spec.hardening is not None:
        training = replace(spec.finetune, epochs=max(1, spec.finetune.epochs))
        hardener = HARDENINGS.get(spec.hardening).from_specs(
            pruned, parent, spec.hardening_attack, training, extra_sources=extra_sources
        )
        hardener.finetune_monitor = finetune_monitor
        pruned = hardener(x, y=y, validation_data=validation_data)
        assert hardener.finetune_record_ is not None
        records.append(hardener.finetune_record_)
    assert defence.compression_report_ is not None
    return Compressed(pruned, records, list(defence.excluded_layers_), defence.compression_report_)
