"""Typed settings that travel between gap-art's rooms: frozen dataclasses that validate
themselves and hold their defaults once.

- :class:`AttackSpec`: an attack by registry name and its budget (the same object reaches
  :func:`gap_art.attacks.make_attack` from the CLI, the bench and the transformers);
- :class:`FinetuneSpec`: training to convergence (epochs, patience, validation split,
  optimizer);
- :class:`MethodSpec`: a pruning method (criterion, compression, scope, rounds), its
  fine-tuning, and the hardening after it.

This module imports nothing above :mod:`gap_art.validation`: registry names (an attack, a
criterion, a hardening) are checked where the registries live, ranges here. Budgets given
as ``None`` are fractions of the classifier's input range, resolved where the classifier is
known (:meth:`AttackSpec.resolve`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from gap_art.errors import ParameterError
from gap_art.validation import check_choice, check_compression, check_int, check_range, params_named

BACKENDS = ("torchattacks", "art")
"""Attack libraries."""
DEVICES = ("auto", "cpu", "cuda")
"""Where to compute: ``auto`` picks CUDA when available."""
PRECISIONS = ("float32", "bfloat16")
"""The arithmetic of gradient steps (training and crafting): float32, or bfloat16 autocast."""
OPTIMIZERS = ("adam", "sgd")
SCOPES = ("global", "layer")
"""Rank scores across all layers, or remove the same fraction in every layer."""
WEIGHTS, CHANNEL = "weights", "channel"
STRUCTURES = (WEIGHTS, CHANNEL)
"""What pruning removes: single weights (irregular, masks) or whole channels (a smaller model)."""

ATTACK_EPS = 8 / 255
"""An attack's default L-inf budget, as a fraction of the input range."""
GAP_EPS = 2 / 255
"""GAP's calibration budget in the reference implementation (fraction of the input range)."""
GAP_EPS_STEP = 0.001
"""GAP's calibration step in the reference implementation (fraction of the input range)."""
GAP_STEPS = 10
"""Iterations of GAP's calibration attack (the reference's)."""
ITERATIVE = "iter"
"""The method modifier that prunes in rounds (``magnitude+iter``)."""


ATTACK_PARAMS = {
    "attack": "attack",
    "backend": "attack_backend",
    "eps": "eps",
    "eps_step": "eps_step",
    "steps": "max_iter",
    "batch_size": "batch_size",
    "seed": "seed",
}
"""The ART-style parameters of a transformer that crafts attacks, by :class:`AttackSpec` field."""
FINETUNE_PARAMS = {
    "epochs": "finetune_epochs",
    "patience": "finetune_patience",
    "validation_fraction": "validation_fraction",
    "optimizer": "finetune_optimizer",
    "lr": "finetune_lr",
    "batch_size": "batch_size",
    "seed": "seed",
}
"""The pruning transformers' (and the bench's) parameters, by :class:`FinetuneSpec` field."""


def default_eps_step(eps: float) -> float:
    """The step of iterative attacks when none is given: a quarter of the budget."""
    return eps / 4


@dataclass(frozen=True)
class AttackSpec:
    """One attack, by registry name, with everything that determines its examples.

    :param attack: Registered attack name (``fgsm``, ``pgd``, ``cw``, ``mifgsm``, ...).
    :param backend: ``torchattacks`` or ``art``; ``None``: torchattacks for a
        ``PyTorchClassifier``, ART for other frameworks.
    :param eps: L-inf budget in the classifier's input units; ``None``: 8/255 of the range.
    :param eps_step: Step of iterative attacks; ``None``: ``eps / 4``.
    :param steps: Iterations; ``None``: the attack's own default (10; 50 for CW).
    :param random_start: PGD starts at a random point of the eps-ball.
    :param batch_size: Examples crafted per call.
    :param seed: Fixes random starts (``None``: the caller's random state).
    :param c: CW's constant.
    :param kappa: CW's confidence margin.
    :param lr: CW's optimiser step.
    :param decay: MI-FGSM's momentum decay.
    :param restarts: Random starts of ``pgd-restarts``.
    :param version: AutoAttack's version.

    The last six are an attack's own settings: ``None`` keeps the attack's default, and
    setting one the attack does not take is an error when the attack is built.
    """

    attack: str = "pgd"
    backend: str | None = None
    eps: float | None = None
    eps_step: float | None = None
    steps: int | None = None
    random_start: bool = True
    batch_size: int = 128
    seed: int | None = 0
    c: float | None = None
    kappa: float | None = None
    lr: float | None = None
    decay: float | None = None
    restarts: int | None = None
    version: str | None = None

    EXTRAS = ("c", "kappa", "lr", "decay", "restarts", "version")
    """The fields that are one attack's own settings."""

    def __post_init__(self) -> None:
        if not isinstance(self.attack, str) or not self.attack:
            raise ParameterError(f"attack must be a registered attack name, got {self.attack!r}")
        if self.backend is not None:
            check_choice(self.backend, "backend", BACKENDS)
        if self.eps is not None:
            check_range(self.eps, "eps", 0.0, float("inf"))
        if self.eps_step is not None:
            check_range(self.eps_step, "eps_step", 0.0, float("inf"), low_open=True)
        if self.steps is not None:
            check_int(self.steps, "steps", 1)
        check_int(self.batch_size, "batch_size", 1)
        if self.seed is not None:
            check_int(self.seed, "seed", 0)
        for name in ("c", "lr"):
            if getattr(self, name) is not None:
                check_range(getattr(self, name), name, 0.0, float("inf"), low_open=True)
        for name in ("kappa", "decay"):
            if getattr(self, name) is not None:
                check_range(getattr(self, name), name, 0.0, float("inf"))
        if self.restarts is not None:
            check_int(self.restarts, "restarts", 1)

    def extras(self) -> dict[str, Any]:
        """The attack's own settings that were given (not ``None``)."""
        return {name: getattr(self, name) for name in self.EXTRAS if getattr(self, name) is not None}

    def resolve(self, span: float, default_eps: float = ATTACK_EPS) -> AttackSpec:
        """This spec with the budget filled in for inputs spanning ``span``: ``eps`` defaults
        to ``default_eps`` of the range and ``eps_step`` to a quarter of ``eps``; both must
        lie in the range."""
        eps = check_range(span * default_eps if self.eps is None else self.eps, "eps", 0.0, span)
        step = default_eps_step(eps) if self.eps_step is None else self.eps_step
        return replace(self, eps=eps, eps_step=check_range(step, "eps_step", 0.0, span, True))


@dataclass(frozen=True)
class FinetuneSpec:
    """Training a model with its masks held, for a number of epochs or to convergence.

    :param epochs: Epochs (the maximum with ``patience``); 0 trains nothing.
    :param patience: Stop after this many epochs without a better score on a seeded
        ``validation_fraction`` of the training data and keep the best epoch; ``None`` trains
        every epoch on all of it.
    :param validation_fraction: Share of the training data held out (seeded) for the score.
    :param optimizer: ``adam`` or ``sgd`` (momentum 0.9).
    :param lr: Learning rate.
    :param batch_size: Examples per step.
    :param seed: Seeds the validation split, the data order and dropout.
    """

    epochs: int = 0
    patience: int | None = None
    validation_fraction: float = 0.1
    optimizer: str = "adam"
    lr: float = 1e-3
    batch_size: int = 128
    seed: int = 0

    def __post_init__(self) -> None:
        check_int(self.epochs, "epochs", 0)
        if self.patience is not None:
            check_int(self.patience, "patience", 1)
        check_range(self.validation_fraction, "validation_fraction", 0.0, 0.5, low_open=True)
        check_choice(self.optimizer, "optimizer", OPTIMIZERS)
        check_range(self.lr, "lr", 0.0, 10.0, low_open=True)
        check_int(self.batch_size, "batch_size", 1)
        check_int(self.seed, "seed", 0)


CONVERGENCE = FinetuneSpec(epochs=30, patience=3)
"""Fine-tuning to convergence, the default of the bench and of ``gap-art prune``: at most 30
epochs, stopping after 3 without a better validation score, the best epoch kept."""


def gap_calibration_attack(eps: float | None = None, eps_step: float | None = None) -> AttackSpec:
    """GAP's calibration attack: PGD for :data:`GAP_STEPS` steps, no fixed seed (the
    transformer's seed governs), budget ``eps`` (``None``: the reference's 2/255 of the range
    and a step of 0.001 of it, see :meth:`MethodSpec.calibration_budget`)."""
    return AttackSpec("pgd", eps=eps, eps_step=eps_step, steps=GAP_STEPS, seed=None)


@dataclass(frozen=True)
class MethodSpec:
    """A method: optionally train the parent with an ART defence first, prune by a criterion,
    optionally in rounds, fine-tune, optionally harden.

    :param criterion: A registered pruning criterion (``gap-grad``, ``magnitude``, ...); with
        ``structure="channel"`` a channel criterion (``l2``, ``gap-grad``, ...: see
        :data:`gap_art.pruning.structured.CHANNEL_CRITERIA`).
    :param compression: Prunable weights over weights kept (>= 1; 4 removes three quarters, 1
        nothing: the unpruned arm of a capacity study).
    :param scope: ``global`` or ``layer``.
    :param iterative: Reach ``compression`` in ``rounds`` (``+iter``), re-scoring the
        current model before each round after the first.
    :param rounds: Rounds of ``iterative`` pruning.
    :param prune_classifier: Also prune the layer producing the logits.
    :param n_calibration: Calibration examples (a seeded subset; ``None``: all given).
    :param calibration_attack: The attack GAP's criteria score on (unused by the others).
    :param finetune: Fine-tuning after each round (with a hardening, the hardening's
        training instead: a hardened model is not clean-fine-tuned first).
    :param hardening: A registered hardening (``tat``, ``gal``) run after pruning, or
        ``None``.
    :param hardening_attack: The attack the hardening trains against, crafted on the parent.
    :param pretraining: A registered ART trainer that fine-tunes the parent (``ensemble-adv``,
        ``fbf``, ``madry-pgd``) run before pruning, as ``finetune`` says, at
        ``hardening_attack.eps``; the method then compresses the defended model. Named
        ``<defence>><method>`` (``ensemble-adv>magnitude``).
    :param seed: Seeds calibration, tie-breaking, fine-tuning and the hardening (it is also
        ``finetune.seed``).
    :param structure: ``weights`` (irregular: single weights, as masks) or ``channel`` (whole
        channels leave the model, :class:`~gap_art.defences.StructuredPruning`; named
        ``<criterion>/channel``; not in rounds, the logits layer whole, ``scope`` unused).
    """

    criterion: str = "magnitude"
    compression: float = 2.0
    scope: str = "global"
    iterative: bool = False
    rounds: int = 3
    prune_classifier: bool = False
    n_calibration: int | None = None
    calibration_attack: AttackSpec = field(default_factory=gap_calibration_attack)
    finetune: FinetuneSpec = field(default_factory=FinetuneSpec)
    hardening: str | None = None
    hardening_attack: AttackSpec = field(default_factory=AttackSpec)
    pretraining: str | None = None
    seed: int = 0
    structure: str = WEIGHTS

    def __post_init__(self) -> None:
        if self.finetune.seed != self.seed:  # one seed governs the method, its fine-tuning included
            object.__setattr__(self, "finetune", replace(self.finetune, seed=self.seed))
        if not isinstance(self.criterion, str) or not self.criterion:
            raise ParameterError(f"criterion must be a registered criterion name, got {self.criterion!r}")
        check_compression(self.compression)
        check_choice(self.scope, "scope", SCOPES)
        for name in ("iterative", "prune_classifier"):
            if not isinstance(getattr(self, name), bool):
                raise ParameterError(f"{name} must be True or False, got {getattr(self, name)!r}")
        check_int(self.rounds, "rounds", 1)
        if self.n_calibration is not None:
            check_int(self.n_calibration, "n_calibration", 1)
        check_int(self.seed, "seed", 0)
        check_choice(self.structure, "structure", STRUCTURES)
        if self.structure == CHANNEL and (self.iterative or self.prune_classifier):
            raise ParameterError(
                f"{self.name}: channel pruning runs in one round and keeps the logits layer whole "
                "(iterative and prune_classifier must be False)"
            )

    @classmethod
    def parse(cls, name: str, param: str = "method", **settings: Any) -> MethodSpec:
        """The spec of a method name ``[<defence>>]<criterion>[/channel][+iter][+<hardening>]``
        (``gap-iter`` is ``gap-grad+iter``), with ``settings`` for the other fields. The name's
        structure is checked here, its registry names by
        :func:`gap_art.defences.methods.check_method`."""
        if not isinstance(name, str) or not name:
            raise ParameterError(
                f"{param} must be a method name such as 'gap-grad' or 'magnitude+tat', got {name!r}"
            )
        *before, method = name.split(PRETRAINING)
        if len(before) > 1 or (before and not before[0]):
            raise ParameterError(f"{param}: {name!r} may name one ART defence before '{PRETRAINING}'")
        if before:
            settings = {**settings, "pretraining": before[0]}
        criterion, *modifiers = ALIASES.get(method, method).split("+")
        criterion, slash, structure = criterion.partition(STRUCTURE)
        if slash:
            check_choice(structure, f"{param}: the structure after '{STRUCTURE}' in {name!r}", [CHANNEL])
            settings = {**settings, "structure": structure}
        hardenings = [m for m in modifiers if m != ITERATIVE]
        if len(hardenings) > 1 or modifiers.count(ITERATIVE) > 1:
            raise ParameterError(f"{param}: {name!r} may name one hardening and '+{ITERATIVE}' once each")
        hardening = hardenings[0] if hardenings else None
        return cls(criterion, iterative=ITERATIVE in modifiers, hardening=hardening, **settings)

    @property
    def name(self) -> str:
        """The method's name: the criterion and its modifiers."""
        modifiers = ([ITERATIVE] if self.iterative else []) + ([self.hardening] if self.hardening else [])
        pretraining = f"{self.pretraining}{PRETRAINING}" if self.pretraining else ""
        structure = f"{STRUCTURE}{self.structure}" if self.structure != WEIGHTS else ""
        return pretraining + "+".join([self.criterion + structure, *modifiers])

    def round_compressions(self) -> list[float]:
        """The compression reached after each round: ``compression`` at once, or a geometric
        schedule of ``rounds`` steps (each removes the same share of what remains)."""
        if not self.iterative:
            return [float(self.compression)]
        return [float(self.compression) ** (k / self.rounds) for k in range(1, self.rounds + 1)]


ALIASES = {"gap-iter": "gap-grad+iter"}
"""Short method names."""

PRETRAINING = ">"
"""Separates an ART defence run before pruning from the method (``ensemble-adv>magnitude``)."""
STRUCTURE = "/"
"""Separates a criterion from the structure it removes (``l2/channel``)."""


T = TypeVar("T")


def from_params(cls: type[T], owner: object, names: Mapping[str, str], **values: Any) -> T:
    """A settings dataclass from an ART-style object's parameters: field ``f`` is read from
    ``owner``'s attribute ``names[f]`` (``values`` are given directly), and an invalid value
    raises an error that names the owner's parameter."""
    read = {name: getattr(owner, param) for name, param in names.items()}
    with params_named(names):
        return cls(**{**read, **values})
