"""Sanity checks of an attack evaluation (Carlini et al. 2019, "On Evaluating Adversarial
Robustness"): run on the source model, shown in every report. A failed check marks the
numbers it affects as not trustworthy; it does not hide them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from art.estimators.classification import PyTorchClassifier

from gap_art.attacks import ATTACKS, AttackAdapter, clip_range, default_eps_step, make_attack
from gap_art.validation import check_inputs, check_labels

EPS_GRID = (0.25, 0.5, 1.0, 2.0)


@dataclass(frozen=True)
class SanityCheck:
    """One check: what was measured, what was required, and which attacks it vouches for.

    :param affects: Attack names whose numbers are not trustworthy when this check fails.
    """

    name: str
    passed: bool
    value: float
    requirement: str
    affects: tuple[str, ...]
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """One line: the check, what it measured against what it requires, and the attacks
        whose numbers it marks."""
        verdict = "passed" if self.passed else "failed"
        return (
            f"{self.name} {verdict}: measured {self.value:.3g}, requires {self.requirement}"
            f"{f' ({self.detail})' if self.detail else ''}; marks {', '.join(self.affects) or 'nothing'}"
        )


def _success(classifier: PyTorchClassifier, x_adv: np.ndarray, y: np.ndarray, clean: np.ndarray) -> float:
    """Fraction of the correctly classified examples that the attack fools."""
    fooled = classifier.predict(x_adv).argmax(1) != y
    return float(fooled[clean].mean()) if clean.any() else 0.0


def run_sanity_checks(
    source: PyTorchClassifier,
    x: np.ndarray,
    y: np.ndarray,
    eps: float,
    attacks: Sequence[str] = ("fgsm", "pgd", "cw"),
    backend: str = "torchattacks",
    seed: int = 0,
    steps: int = 10,
    overrides: Mapping[str, AttackAdapter | Any] | None = None,
    eps_grid: Sequence[float] = EPS_GRID,
) -> list[SanityCheck]:
    """Check that the attacks at this budget behave as working attacks do, on ``source``.

    - the attack works: white-box success on the source above 90% for each iterative attack
      (PGD, CW, MI-FGSM, ...: its recipe says; FGSM's one step is checked against them);
    - accuracy does not rise with eps (PGD over ``eps_grid`` x eps, at least 4 values);
    - iterative attacks do at least as well as FGSM;
    - doubling PGD's steps changes its success by under 2 points;
    - an unbounded PGD (eps = the whole input range) drives accuracy to about 0.

    :param overrides: Attack instances to check instead of building them by name (e.g. a
        deliberately broken attack must be flagged).
    """
    x = check_inputs(x, tuple(source.input_shape))
    y = check_labels(y, len(x), source.nb_classes)
    overrides = dict(overrides or {})
    clean = source.predict(x).argmax(1) == y
    low, high = clip_range(source)
    span = high - low

    def attack(name: str, **settings: Any) -> AttackAdapter:
        if name in overrides and not settings:
            return make_attack(overrides[name], source, seed=seed)
        base = {"backend": backend, "eps": eps, "eps_step": default_eps_step(eps), "seed": seed}
        if ATTACKS.get(name).follows_study_steps:
            base["max_iter"] = steps
        return make_attack(name, source, **{**base, **settings})

    success = {name: _success(source, attack(name).generate(x, y), y, clean) for name in attacks}
    checks = []
    for name in (a for a in success if a not in ATTACKS or ATTACKS.get(a).iterative):
        checks.append(
            SanityCheck(
                f"{name} works white-box",
                success[name] > 0.9,
                success[name],
                "> 0.90 success on the source",
                (name,),
            )
        )

    def pgd_accuracy(budget: float, **settings: Any) -> float:
        adv = attack("pgd", eps=budget, eps_step=default_eps_step(budget), **settings).generate(x, y)
        return float((source.predict(adv).argmax(1) == y).mean())

    accuracies = [pgd_accuracy(min(m * eps, span)) for m in eps_grid]
    rising = [i for i in range(1, len(accuracies)) if accuracies[i] > accuracies[i - 1] + 1 / len(x)]
    checks.append(
        SanityCheck(
            "accuracy falls with eps",
            not rising,
            max(accuracies) - min(accuracies),
            "PGD accuracy non-increasing over eps x " + ", ".join(f"{m:g}" for m in eps_grid),
            tuple(a for a in attacks if a != "fgsm") or ("pgd",),
            "accuracies: " + ", ".join(f"{a:.3f}" for a in accuracies),
        )
    )
    if "fgsm" in success:
        for name in (a for a in attacks if a in ATTACKS and ATTACKS.get(a).iterative):
            checks.append(
                SanityCheck(
                    f"{name} at least as strong as fgsm",
                    success[name] >= success["fgsm"] - 0.01,
                    success[name] - success["fgsm"],
                    ">= FGSM success - 0.01",
                    (name, "fgsm"),
                )
            )
    pgd = success["pgd"] if "pgd" in success else _success(source, attack("pgd").generate(x, y), y, clean)
    doubled = _success(source, attack("pgd", max_iter=2 * steps).generate(x, y), y, clean)
    checks.append(
        SanityCheck(
            "pgd converged (2x steps)",
            abs(doubled - pgd) < 0.02,
            doubled - pgd,
            "|success(2x steps) - success| < 0.02",
            ("pgd", "pgd-restarts", "mifgsm"),
        )
    )
    unbounded = pgd_accuracy(span, max_iter=50)
    checks.append(
        SanityCheck(
            "unbounded attack reaches ~0",
            unbounded <= 0.01,
            unbounded,
            "white-box accuracy <= 0.01 at eps = input range",
            tuple(attacks),
        )
    )
    return checks


def untrusted_attacks(checks: Sequence[SanityCheck]) -> dict[str, list[str]]:
    """For each attack, the names of the failed checks that make its numbers untrustworthy."""
    failures: dict[str, list[str]] = {}
    for check in checks:
        if not check.passed:
            for name in check.affects:
                failures.setdefault(name, []).append(check.name)
    return failures
