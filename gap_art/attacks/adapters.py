"""Adapters over torchattacks and ART evasion attacks, and a factory by name."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torchattacks
from art.attacks.attack import EvasionAttack
from art.estimators.classification import PyTorchClassifier
from torch import nn
from tqdm.auto import tqdm

from gap_art.classifiers import ClassifierModule, check_pytorch_classifier, require_gradients
from gap_art.training import seeded
from gap_art.validation import check_choice, check_int, check_range

ATTACK_NAMES = ("fgsm", "pgd", "cw", "mifgsm", "pgd-restarts", "autoattack")
BACKENDS = ("torchattacks", "art")


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


class _UnitRangeModule(nn.Module):
    """Maps [0, 1] inputs onto the classifier's clip range, so torchattacks' [0, 1] clamps hold."""

    def __init__(self, inner: nn.Module, low: float, high: float) -> None:
        super().__init__()
        self.inner, self.low, self.high = inner, low, high

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self.inner(self.low + u * (self.high - self.low))


class TorchattacksAttack(AttackAdapter):
    """A ``torchattacks.Attack`` crafted against an ART classifier's forward pass.

    Inputs are rescaled from the classifier's ``clip_values`` to torchattacks' [0, 1] range
    and back; ART preprocessing runs inside the model, so normalization is honoured.
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


def _clip_range(classifier: PyTorchClassifier) -> tuple[float, float]:
    clip = classifier.clip_values
    if clip is None:
        raise ValueError("classifier must have clip_values (the valid input range) to be attacked")
    low, high = np.asarray(clip[0]), np.asarray(clip[1])
    if low.size != 1 or high.size != 1:
        raise ValueError("per-feature clip_values are not supported; use scalar (min, max)")
    return float(low), float(high)


def make_attack(
    attack: str | torchattacks.attack.Attack | EvasionAttack | AttackAdapter,
    classifier: PyTorchClassifier,
    backend: str = "torchattacks",
    eps: float | None = None,
    eps_step: float | None = None,
    max_iter: int | None = None,
    random_start: bool = True,
    batch_size: int = 128,
    seed: int | None = 0,
    **kwargs: Any,
) -> AttackAdapter:
    """Build an attack on ``classifier`` by name, or adapt a ready attack instance.

    :param attack: ``fgsm``, ``pgd`` (L-inf), ``cw`` (L2), ``mifgsm``, ``pgd-restarts``
        (PGD with twice the steps from ``restarts`` random starts, the best kept per example)
        or ``autoattack``; or a ``torchattacks.Attack`` / ART ``EvasionAttack`` instance.
    :param backend: ``torchattacks`` (default) or ``art``.
    :param eps: L-inf budget in the classifier's input units (default 8/255 of the range).
    :param eps_step: Step size of iterative attacks (default ``eps / 4``).
    :param max_iter: Iterations (default 10; 50 for ``cw``).
    :param random_start: PGD starts at a random point of the eps-ball.
    :param kwargs: Extra settings: ``c`` (default 10), ``kappa`` (0), ``lr`` (0.1) for CW, a
        budget that drives small-image classifiers to ~0 accuracy in 50 steps (torchattacks'
        own c=1, lr=0.01 barely moves them; the bench's sanity checks flag such a CW); ``decay`` for MI-FGSM;
        ``restarts`` (default 5) for ``pgd-restarts``; ``version`` for AutoAttack.
    :raises GradientFreeError: ``classifier`` is an int8 model (craft on a surrogate).
    """
    check_pytorch_classifier(classifier)
    require_gradients(classifier)
    if isinstance(attack, AttackAdapter):
        return attack
    if isinstance(attack, torchattacks.attack.Attack):
        return TorchattacksAttack(classifier, attack, batch_size=batch_size, seed=seed)
    if isinstance(attack, EvasionAttack):
        return ARTAttack(classifier, attack, batch_size=batch_size, seed=seed)
    if not isinstance(attack, str):
        raise TypeError(
            "attack must be a name in "
            f"{list(ATTACK_NAMES)}, a torchattacks.Attack or an ART EvasionAttack, "
            f"got {type(attack).__name__}"
        )
    check_choice(attack, "attack", ATTACK_NAMES)
    check_choice(backend, "backend", BACKENDS)
    low, high = _clip_range(classifier)
    span = high - low
    eps = check_range(span * 8 / 255 if eps is None else eps, "eps", 0.0, span)
    eps_step = check_range(eps / 4 if eps_step is None else eps_step, "eps_step", 0.0, span, True)
    steps = check_int(max_iter if max_iter is not None else (50 if attack == "cw" else 10), "max_iter", 1)
    unknown = sorted(set(kwargs) - set(_EXTRA_SETTINGS))
    if unknown:
        raise ValueError(f"unknown attack settings {unknown}; allowed: {', '.join(_EXTRA_SETTINGS)}")
    settings = _Settings(attack, eps, eps_step, steps, random_start, batch_size, seed, **kwargs)
    if backend == "torchattacks":
        return _build_torchattacks(classifier, settings, (low, high))
    return _build_art(classifier, settings)


@dataclass(frozen=True)
class _Settings:
    """The resolved settings of an attack requested by name."""

    name: str
    eps: float
    eps_step: float
    steps: int
    random_start: bool
    batch_size: int
    seed: int | None
    c: float = 10.0
    kappa: float = 0.0
    lr: float = 0.1
    decay: float = 1.0
    restarts: int = 5
    version: str = "standard"

    def __post_init__(self) -> None:
        check_int(self.restarts, "restarts", 1)


_EXTRA_SETTINGS = ("c", "kappa", "lr", "decay", "restarts", "version")


def _build_torchattacks(
    classifier: PyTorchClassifier, s: _Settings, clip: tuple[float, float]
) -> TorchattacksAttack:
    low, high = clip
    span = high - low
    model = ClassifierModule(classifier)
    module: nn.Module = model if (low, high) == (0.0, 1.0) else _UnitRangeModule(model, low, high)
    eps, alpha = s.eps / span, s.eps_step / span
    attack: torchattacks.attack.Attack
    if s.name == "fgsm":
        attack = torchattacks.FGSM(module, eps=eps)
    elif s.name == "pgd":
        attack = torchattacks.PGD(module, eps=eps, alpha=alpha, steps=s.steps, random_start=s.random_start)
    elif s.name == "mifgsm":
        attack = torchattacks.MIFGSM(module, eps=eps, alpha=alpha, steps=s.steps, decay=s.decay)
    elif s.name == "pgd-restarts":  # MultiAttack keeps, per example, the first run that succeeds
        runs = [torchattacks.PGD(module, eps=eps, alpha=alpha, steps=2 * s.steps) for _ in range(s.restarts)]
        attack = torchattacks.MultiAttack(runs)
    elif s.name == "cw":
        attack = torchattacks.CW(module, c=s.c, kappa=s.kappa, steps=s.steps, lr=s.lr)
    else:
        attack = torchattacks.AutoAttack(
            module,
            norm="Linf",
            eps=eps,
            version=s.version,
            n_classes=classifier.nb_classes,
            seed=s.seed,
        )
    return TorchattacksAttack(classifier, attack, s.name, s.batch_size, s.seed, clip)


def _build_art(classifier: PyTorchClassifier, s: _Settings) -> ARTAttack:
    from art.attacks import evasion

    attack: EvasionAttack
    if s.name == "fgsm":
        attack = evasion.FastGradientMethod(classifier, norm=np.inf, eps=s.eps, batch_size=s.batch_size)
    elif s.name in ("pgd", "pgd-restarts"):
        restarts = s.name == "pgd-restarts"
        attack = evasion.ProjectedGradientDescent(
            classifier,
            norm=np.inf,
            eps=s.eps,
            eps_step=s.eps_step,
            max_iter=2 * s.steps if restarts else s.steps,
            num_random_init=s.restarts if restarts else int(s.random_start),
            batch_size=s.batch_size,
            verbose=False,
        )
    elif s.name == "mifgsm":
        attack = evasion.MomentumIterativeMethod(
            classifier,
            norm=np.inf,
            eps=s.eps,
            eps_step=s.eps_step,
            decay=s.decay,
            max_iter=s.steps,
            batch_size=s.batch_size,
            verbose=False,
        )
    elif s.name == "cw":
        attack = evasion.CarliniL2Method(
            classifier,
            confidence=s.kappa,
            learning_rate=s.lr,
            max_iter=s.steps,
            binary_search_steps=1,
            initial_const=s.c,
            batch_size=s.batch_size,
            verbose=False,
        )
    else:
        attack = evasion.AutoAttack(
            classifier, norm=np.inf, eps=s.eps, eps_step=s.eps_step, batch_size=s.batch_size
        )
    return ARTAttack(classifier, attack, s.name, s.batch_size, s.seed)
