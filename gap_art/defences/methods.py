"""Methods by name: a pruning criterion, optionally pruned in rounds, optionally hardened
against transfer from the parent afterwards.

``gap-grad`` prunes with GAP's signed gradient; ``magnitude+iter`` prunes by magnitude in
rounds; ``gap-grad+tat`` prunes with GAP and fine-tunes with
:class:`~gap_art.defences.hardening.TransferAdversarialFinetuning`; ``magnitude+gal`` with
:class:`~gap_art.defences.misalignment.GradientMisalignmentFinetuning`. ``gap-iter`` is short
for ``gap-grad+iter``. Hardenings are a registry (entry-point group ``gap_art.hardening``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from art.estimators.classification import PyTorchClassifier

from gap_art.defences.finetune import FinetuneRecord
from gap_art.defences.gap import pruning_defence
from gap_art.defences.hardening import TransferAdversarialFinetuning, TransferHardening
from gap_art.defences.misalignment import GradientMisalignmentFinetuning
from gap_art.pruning import CompressionReport
from gap_art.pruning.importance import IMPORTANCE
from gap_art.registry import Registry, did_you_mean

HARDENINGS: Registry[type[TransferHardening]] = Registry("hardening", "gap_art.hardening")
HARDENINGS.register("tat")(TransferAdversarialFinetuning)
HARDENINGS.register("gal")(GradientMisalignmentFinetuning)

ITERATIVE = "iter"
"""The modifier that prunes in rounds, re-scoring the current model each round."""
ALIASES = {"gap-iter": "gap-grad+iter"}


@dataclass(frozen=True)
class Method:
    """A parsed method name.

    :param criterion: The pruning criterion (registry name).
    :param iterative: Prune in rounds (``+iter``).
    :param hardening: The transfer hardening that fine-tunes the pruned model (``+tat``,
        ``+gal``), or ``None`` for clean fine-tuning.
    """

    criterion: str
    iterative: bool = False
    hardening: str | None = None

    @property
    def adversarial(self) -> bool:
        """Whether the criterion crafts attacks to score (GAP's family)."""
        return IMPORTANCE.get(self.criterion).needs_attack


def parse_method(name: str, param: str = "method") -> Method:
    """The parts of a method name; an unknown part raises ``ValueError`` naming ``param``."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"{param} must be a method name such as 'gap-grad' or 'magnitude+tat', got {name!r}")
    criterion, *modifiers = ALIASES.get(name, name).split("+")
    IMPORTANCE.get(criterion, param)
    hardenings = [m for m in modifiers if m != ITERATIVE]
    for modifier in hardenings:
        if modifier not in HARDENINGS.names():
            known = [ITERATIVE, *HARDENINGS.names()]
            raise ValueError(
                f"{param}: unknown modifier {modifier!r} in {name!r}; known modifiers: {known}"
                f"{did_you_mean(modifier, known)}"
            )
    if len(hardenings) > 1 or modifiers.count(ITERATIVE) > 1:
        raise ValueError(f"{param}: {name!r} may name one hardening and '+{ITERATIVE}' once each")
    return Method(criterion, ITERATIVE in modifiers, hardenings[0] if hardenings else None)


def method_catalogue() -> dict[str, str]:
    """Every criterion, the modifiers and the aliases, with one line each."""
    entries = {name: cls.description for name, cls in IMPORTANCE}
    entries[f"<criterion>+{ITERATIVE}"] = "prune in rounds, re-scoring the current model before each"
    entries.update({f"<criterion>+{name}": cls.description for name, cls in HARDENINGS})
    entries.update({alias: f"short for {full}" for alias, full in ALIASES.items()})
    return entries


@dataclass(frozen=True)
class Compressed:
    """A model a method produced, with what its fine-tuning did.

    :param classifier: The pruned (and hardened) classifier.
    :param records: Fine-tuning of each pruning round, then of the hardening if any.
    :param excluded_layers: Layers the pruning left dense.
    :param report: The compression achieved (masks hold through the hardening).
    """

    classifier: PyTorchClassifier
    records: list[FinetuneRecord]
    excluded_layers: list[str]
    report: CompressionReport


def apply_method(
    name: str,
    classifier: PyTorchClassifier,
    compression: float,
    x_calibration: Any,
    y_calibration: Any,
    x: Any,
    y: Any,
    pruning: dict[str, Any] | None = None,
    hardening: dict[str, Any] | None = None,
    finetune_monitor: Callable[[int, PyTorchClassifier], None] | None = None,
) -> Compressed:
    """Run a method by name on ``classifier`` (the parent; never modified).

    :param pruning: Settings of the pruning transformer (fine-tuning, seed, attack, ...).
    :param hardening: Settings of the hardening transformer (eps, epochs, patience, ...);
        with a hardening, the pruned model is not clean-fine-tuned first: the hardening is
        its fine-tuning.
    :param finetune_monitor: The pruning transformer's ``finetune_monitor`` (clean
        fine-tuning of the last round; unused with a hardening).
    """
    method = parse_method(name)
    pruning = dict(pruning or {})
    if method.iterative:
        pruning["iterative"] = True
    if method.hardening is not None:
        pruning["finetune_epochs"] = 0
    defence = pruning_defence(classifier, method.criterion, compression, **pruning)
    if method.hardening is None:
        defence.finetune_monitor = finetune_monitor
    defence.fit(x_calibration, y_calibration)
    pruned = defence(x, y=y)
    records = list(defence.finetune_records_)
    if method.hardening is not None:
        hardener = HARDENINGS.get(method.hardening)(pruned, classifier, **(hardening or {}))
        pruned = hardener(x, y=y)
        assert hardener.finetune_record_ is not None
        records.append(hardener.finetune_record_)
    assert defence.compression_report_ is not None
    return Compressed(pruned, records, list(defence.excluded_layers_), defence.compression_report_)
