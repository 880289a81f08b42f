"""The attack layer's two small bases.

- :class:`AttackAdapter`: one built attack against one ART classifier, with numpy
  (``generate``) and torch (``craft``) entry points; :class:`TorchattacksAttack` and
  :class:`ARTAttack` adapt the two libraries.
- :class:`AttackRecipe`: how to build one named attack in either library, with its defaults.
  One module per attack subclasses it and registers it in :data:`ATTACKS`.

No attack is implemented here: torchattacks and ART do the work.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
import torchattacks
from art.attacks.attack import EvasionAttack
from art.estimators.classification import PyTorchClassifier
from torch import nn
from tqdm.auto import tqdm

from gap_art.errors import ParameterError
from gap_art.registry import Registry
from gap_art.runtime import gradient_autocast, seeded
from gap_art.validation import check_int

LINF, L2 = "linf", "l2"
"""The norms an attack recipe declares (:attr:`AttackRecipe.norm`)."""


class AttackAdapter(ABC):
    """One attack against one ART classifier, with numpy and torch entry points.

    :param classifier: The ART classifier the examples are crafted on.
    :param name: Short name for reports (``pgd``, ``cw``, ...).
    :param batch_size: Examples crafted per call of the underlying attack.
    :param seed: Fixes random starts; the same call twice gives the same examples.
    """

    def __init__(
        self, classifier: PyTorchClassifier, name: str, batch_size: int = 128, seed: int | None = 0
    ) -> None:
        self.classifier = classifier
        self.name = name
        self.batch_size = check_int(batch_size, "batch_size", 1)
        self.seed = seed

    @abstractmethod
    def craft(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Adversarial versions of one batch ``x`` (true labels ``y``), on ``x``'s device."""

    def generate(self, x: np.ndarray, y: np.ndarray, progress: bool = False) -> np.ndarray:
        """Adversarial versions of ``x`` (numpy, ART style), crafted in batches."""
        x_t, y_t = torch.from_numpy(np.asarray(x, dtype=np.float32)), torch.as_tensor(y)
        pieces = []
        with seeded(self.seed):
            batches = zip(x_t.split(self.batch_size), y_t.split(self.batch_size), strict=True)
            total = -(-len(x_t) // self.batch_size)
            for xb, yb in tqdm(batches, total=total, desc=f"craft {self.name}", disable=not progress):
                pieces.append(self.craft(xb, yb).detach().cpu())
        return torch.cat(pieces).numpy() if pieces else np.empty_like(x)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.craft(x, y)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, seed={self.seed})"


class UnitRangeModule(nn.Module):
    """Maps [0, 1] inputs onto the classifier's clip range, so torchattacks' [0, 1] clamps hold.

    The forward pass runs at the precision in force (:func:`~gap_art.runtime.gradient_autocast`;
    always float32 with ``autocast=False``) and returns float32 logits, so the attack's losses
    and bookkeeping stay float32."""

    def __init__(self, inner: nn.Module, low: float, high: float, autocast: bool = True) -> None:
        super().__init__()
        self.inner, self.low, self.high, self.autocast = inner, low, high, autocast

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        with gradient_autocast(u.device, allowed=self.autocast):
            logits = self.inner(self.low + u * (self.high - self.low))
        return logits.float()


class TorchattacksAttack(AttackAdapter):
    """A ``torchattacks.Attack`` crafted against an ART classifier's forward pass.

    Inputs are rescaled from the classifier's ``clip_values`` to torchattacks' [0, 1] range
    and back; ART preprocessing runs inside the model, so normalization is honoured. Inside
    :func:`~gap_art.runtime.computing_precision` ``("bfloat16")`` the model's forward passes run
    under bfloat16 autocast (see :class:`UnitRangeModule`); the attack's own arithmetic stays float32.
    """

    def __init__(
        self,
        classifier: PyTorchClassifier,
        attack: torchattacks.attack.Attack,
        name: str | None = None,
        batch_size: int = 128,
        seed: int | None = 0,
        clip_values: tuple[float, float] = (0.0, 1.0),
    ) -> None:
        super().__init__(classifier, name or type(attack).__name__.lower(), batch_size, seed)
        self.attack = attack
        self.low, self.high = clip_values

    def craft(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        span = self.high - self.low
        device = next(self.attack.model.parameters()).device
        u = ((x.to(device) - self.low) / span).clamp(0, 1)
        adv = self.attack(u, y.to(device))
        return (self.low + adv * span).to(x.device)


class ARTAttack(AttackAdapter):
    """An ART ``EvasionAttack``; ART applies the estimator's clip values and preprocessing."""

    def __init__(
        self,
        classifier: PyTorchClassifier,
        attack: EvasionAttack,
        name: str | None = None,
        batch_size: int = 128,
        seed: int | None = 0,
    ) -> None:
        super().__init__(classifier, name or type(attack).__name__, batch_size, seed)
        self.attack = attack

    def craft(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        adv = self.attack.generate(x.detach().cpu().numpy(), y=y.detach().cpu().numpy())
        return torch.from_numpy(adv).to(x.device)


@dataclass(frozen=True)
class AttackSettings:
    """The resolved settings of an attack requested by name.

    ``eps`` and ``eps_step`` are in the units the builder works in: the classifier's input
    units for ART, [0, 1] for torchattacks (which clamps to [0, 1]).
    """

    eps: float
    eps_step: float
    steps: int
    random_start: bool
    batch_size: int
    seed: int | None
    nb_classes: int
    extras: dict[str, Any] = field(default_factory=dict)


class AttackRecipe(ABC):
    """How to build one named attack with torchattacks and with ART, and its defaults.

    :cvar extras: Attack-specific settings with their defaults (e.g. CW's ``c``); a caller's
        keyword arguments may override exactly these.
    :cvar norm: The norm its budget bounds: ``linf`` (``eps`` is an L-inf radius) or ``l2``
        (minimal-perturbation attacks such as CW, reported on their own, never in an L-inf
        minimum).
    """

    name: ClassVar[str] = ""
    norm: ClassVar[str] = LINF
    description: ClassVar[str] = ""
    iterative: ClassVar[bool] = True
    default_steps: ClassVar[int] = 10
    follows_study_steps: ClassVar[bool] = True
    """A study's step count applies to it (CW keeps its own optimiser steps)."""
    extras: ClassVar[dict[str, Any]] = {}
    in_art: ClassVar[bool] = True
    """ART has this attack too (``backend='art'`` builds it); DI-, TI- and VMI-FGSM are
    torchattacks' alone."""
    margin: ClassVar[str | None] = None
    """The own setting (one of :attr:`extras`) that sets a confidence margin the examples must
    clear (CW's ``kappa``): a study's ``cw_kappa`` sets it; ``None``: the attack takes none."""
    margin_backend: ClassVar[str | None] = None
    """The backend that honours a margin above 0, where only one does (ART's CW)."""
    bfloat16: ClassVar[bool] = True
    """It may craft under bfloat16 autocast (``precision = "bfloat16"``); ``False`` for an attack
    that stops on the decision boundary (CW at kappa 0), where bfloat16 logits and the float32
    ones that score its examples disagree: it always crafts in float32."""

    @classmethod
    def label(cls, margin: float | None = None) -> str:
        """How reports name the attack: an L-inf attack by its name; another with its norm, and
        with its ``margin`` where it takes one (``CW (L2, kappa 0)``)."""
        if cls.norm == LINF:
            return cls.name.upper()
        kept = f", {cls.margin} {margin or 0.0:g}" if cls.margin is not None else ""
        return f"{cls.name.upper()} ({cls.norm.upper()}{kept})"

    @abstractmethod
    def torchattacks(self, module: nn.Module, s: AttackSettings) -> torchattacks.attack.Attack:
        """The torchattacks attack on ``module`` (which takes [0, 1] inputs)."""

    @abstractmethod
    def art(self, classifier: PyTorchClassifier, s: AttackSettings) -> EvasionAttack:
        """The ART attack on ``classifier``."""


def art_linf_iterative(
    attack_class: type[EvasionAttack], classifier: PyTorchClassifier, s: AttackSettings, **settings: Any
) -> EvasionAttack:
    """An ART L-inf iterative attack (PGD, MI-FGSM, ...) with the settings they share."""
    common = {"eps": s.eps, "eps_step": s.eps_step, "max_iter": s.steps, "batch_size": s.batch_size}
    return attack_class(classifier, norm=np.inf, verbose=False, **{**common, **settings})


def check_backend(attack: str, backend: str, param: str = "backend") -> None:
    """A :class:`ParameterError` naming ``param`` when ``backend`` cannot build ``attack``."""
    if backend == "art" and not ATTACKS.get(attack, "attack").in_art:
        raise ParameterError(
            f"{param}: attack {attack!r} exists only in torchattacks, not in ART: use backend "
            "'torchattacks' (which needs a PyTorchClassifier)"
        )


class TorchattacksOnlyRecipe(AttackRecipe):
    """An attack ART lacks (DI-, TI-, VMI-FGSM): ``backend='art'`` is refused by
    :func:`check_backend` before it gets here."""

    in_art: ClassVar[bool] = False

    def art(self, classifier: PyTorchClassifier, s: AttackSettings) -> EvasionAttack:
        raise ParameterError(f"attack {self.name!r} exists only in torchattacks: use backend 'torchattacks'")


ATTACKS: Registry[type[AttackRecipe]] = Registry("attack", "gap_art.attacks")
register = ATTACKS.register


def is_linf(attack: str) -> bool:
    """Whether the registered attack ``attack`` is bounded in L-inf (a name no installed
    recipe registers, e.g. from another install's results, counts as L-inf: the default)."""
    return attack not in ATTACKS or ATTACKS.get(attack).norm == LINF
