"""A study's goal as data (a TOML file), and the check of each of its clauses against a
finished study: every attacker x attack, paired tests across seeds against the baselines per
attacker (Holm-corrected over the goal's own), ART's references at equal clean cost, label
leaking, and the clean budget per seed. A clause is met, missed, or open (not run, or not
comparable): only met counts."""

from __future__ import annotations

import math
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from gap_art.bench.comparisons import Comparison
from gap_art.bench.config import ConfigError
from gap_art.bench.primary import BETTER, UNTESTED, PrimaryResult, compare_across_seeds
from gap_art.bench.rows import Row, metric
from gap_art.bench.summary import HEADLINE, budget_table, is_candidate, method_label
from gap_art.bench.target_names import PICK
from gap_art.bench.threats import check_threat_model
from gap_art.errors import ParameterError
from gap_art.evaluation.metrics import paired_t_test
from gap_art.validation import check_range

MET, MISSED, OPEN = "met", "missed", "open"


@dataclass(frozen=True)
class Goal:
    """What a hardening must reach at one compression ratio.

    :param name: The goal's name, for reports.
    :param attackers: Per threat model, the least mean transfer accuracy over seeds, for each
        of ``attacks``.
    :param attacks: The attacks every attacker clause covers.
    :param methods: The methods held to the goal (``gap-grad+tat``, ...); empty: every method
        of the study that claims transfer robustness (GAP, ``+iter``, ``+tat``, ``+gal``).
    :param ratio: The compression ratio of their targets.
    :param clean_budget: How far below the dense model's clean accuracy each seed's target may
        be (a fraction: 0.02 is 2 points).
    :param baselines: Methods each must beat, per attacker and attack, in a paired t-test
        across seeds at Holm-corrected ``alpha`` (Holm over the goal's paired clauses).
    :param references: ART defences (``art:fbf``, ...) it must be no worse than at equal clean
        cost, per attacker and attack.
    :param alpha: Level of the paired tests (Holm-adjusted over the goal's paired clauses).
    :param worst_attacker: The least mean worst-attacker transfer accuracy (the lowest over
        every attacker and attack the study ran, per seed); with ``references``, also above
        each of theirs at equal clean cost. ``None``: no such clause.
    :param frontier: The robustness frontier: clean costs (``"0.05"``: 5 points below the dense
        model) and the least mean worst-attacker accuracy (0: none) of the point validation
        chooses within each cost (:func:`~gap_art.bench.summary.budget_table` over the method's
        targets at ``ratio``, epochs chosen from training curves included), which must also be at
        or above the best of ``references`` there (per-seed differences, paired t).
    :param description: One line on where the goal comes from.
    """

    name: str
    attackers: dict[str, float] = field(default_factory=dict)
    attacks: tuple[str, ...] = ("pgd",)
    methods: tuple[str, ...] = ()
    ratio: float = 4.0
    clean_budget: float = 0.02
    baselines: tuple[str, ...] = ("random", "magnitude")
    references: tuple[str, ...] = ()
    alpha: float = 0.05
    worst_attacker: float | None = None
    frontier: dict[str, float] = field(default_factory=dict)
    description: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not (self.attackers or self.frontier):
            raise ParameterError(
                "attackers must name at least one threat model with its least transfer accuracy "
                "(or frontier at least one clean cost)"
            )
        for cost, least in self.frontier.items():
            check_range(_cost(cost), "frontier cost", 0.0, 1.0, low_open=True)
            check_range(least, f"frontier.{cost}", 0.0, 1.0)
        for threat, least in self.attackers.items():
            check_threat_model(threat, "attackers")
            check_range(least, f"attackers.{threat}", 0.0, 1.0)
        if not self.attacks:
            raise ParameterError("attacks must name at least one attack")
        check_range(self.ratio, "ratio", 1.0, math.inf)
        check_range(self.clean_budget, "clean_budget", 0.0, 1.0)
        check_range(self.alpha, "alpha", 0.0, 1.0)
        if self.worst_attacker is not None:
            check_range(self.worst_attacker, "worst_attacker", 0.0, 1.0)

    @classmethod
    def load(cls, path: str | Path) -> Goal:
        """Read a goal file (TOML); an unknown key or a bad value is a :class:`ConfigError`
        that names it."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text())
        except OSError as error:
            raise ConfigError(f"goal file {path} cannot be read: {error.strerror}") from error
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"goal file {path} is not valid TOML: {error}") from error
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"goal file {path}: unknown keys {unknown}; known keys: {sorted(known)}")
        lists = {k: tuple(v) for k, v in data.items() if isinstance(v, list)}
        try:
            return cls(**{**data, **lists})
        except (TypeError, ValueError) as error:
            raise ConfigError(f"goal file {path}: {error}") from None


@dataclass(frozen=True)
class Clause:
    """One clause of a goal for one method: its status and how far it is."""

    method: str
    clause: str
    status: str
    distance: str


def check_goal(goal: Goal, rows: Sequence[Row], eps: float) -> list[Clause]:
    """Every clause of ``goal`` for every method it covers, from a study's rows (at ``eps``).
    A leaking cell meets no clause."""
    usable = [r for r in rows if not r.get("error") and r["eps"] == eps]
    methods = goal.methods or tuple(
        dict.fromkeys(method_label(r) for r in usable if is_candidate(r) and _at(r, goal.ratio))
    )
    tested = _paired_tests(goal, methods, rows, eps)
    clauses: list[Clause] = []
    for method in methods:
        kept = [r for r in usable if PICK not in r["target"]]  # the epochs picked: the frontier's
        cells = [r for r in kept if method_label(r) == method and _at(r, goal.ratio)]
        if not cells:
            clauses.append(Clause(method, f"a target at {goal.ratio:g}x", OPEN, "not in the study"))
            continue
        clauses.append(_clean_budget(goal, method, cells, usable))
        clauses.append(_no_leaking(method, cells))
        if goal.worst_attacker is not None:
            clauses += _worst_attacker(goal, method, cells, usable)
        clauses += _frontier(goal, method, usable, eps)
        for threat, least in goal.attackers.items():
            for attack in goal.attacks:
                chosen = [r for r in cells if r["threat_model"] == threat and r["attack"] == attack]
                clauses.append(_transfer(method, threat, attack, least, chosen))
                for baseline in goal.baselines:
                    comparison = _against(goal, method, baseline, threat, attack)
                    clauses.append(_paired(goal, method, comparison, tested.get(comparison)))
                for reference in goal.references:
                    theirs = [r for r in usable if r["target"] == reference]
                    theirs = [r for r in theirs if r["threat_model"] == threat and r["attack"] == attack]
                    label = f"{attack.upper()} from {threat}"
                    clauses.append(_reference(method, reference, label, chosen, theirs, "transfer_accuracy"))
    return clauses


def goal_met(clauses: Sequence[Clause]) -> bool:
    return bool(clauses) and all(c.status == MET for c in clauses)


def format_goal(goal: Goal, clauses: Sequence[Clause]) -> str:
    """The check clause by clause, per method, with the distance to each."""
    head = f"Goal {goal.name}: {'met' if goal_met(clauses) else 'not met'}"
    lines = [head + (f" ({goal.description})" if goal.description else "")]
    for method in dict.fromkeys(c.method for c in clauses):
        ours = [c for c in clauses if c.method == method]
        met = sum(c.status == MET for c in ours)
        lines.append(f"\n{method}@{goal.ratio:g}x: {met} of {len(ours)} clauses met")
        lines += [f"  [{c.status:>6}] {c.clause}: {c.distance}" for c in ours]
    return "\n".join(lines)


def _at(row: Row, ratio: float) -> bool:
    return math.isclose(float(row["requested_compression"]), ratio)


def _cost(text: object) -> float:
    """A frontier cost as a number (TOML keys are strings)."""
    try:
        return float(str(text))
    except ValueError:
        raise ParameterError(f'frontier costs must be numbers such as "0.05", got {text!r}') from None


def _frontier(goal: Goal, method: str, rows: Sequence[Row], eps: float) -> list[Clause]:
    """Per clean cost of ``goal.frontier``: the point validation chooses within it (the
    method's targets at the goal's ratio, ART's references) at least the least asked, and at or
    above the best reference's, per seed on test."""
    kept = [r for r in rows if r["family"] != "pruning" or _at(r, goal.ratio)]
    entries = budget_table(kept, goal.attacks[0], eps, sorted(map(_cost, goal.frontier)), HEADLINE)
    points = {(e["method"], e["budget"]): e for e in entries}
    clauses = []
    for cost, least in sorted((_cost(c), v) for c, v in goal.frontier.items()):
        ours = points.get((method, cost))
        label = f"within {100 * cost:g} points, chosen on validation: worst-attacker accuracy"
        if least > 0:
            clauses.append(_least_point(method, f"{label} >= {least:.2f}", ours, least))
        references = [e for r in goal.references if (e := points.get((r, cost))) and e["mean"] is not None]
        if goal.references:
            best = max(references, key=lambda e: float(e["mean"]), default=None)
            clauses.append(_above_best(method, f"{label} at or above ART's best there", ours, best))
    return clauses


def _missing(entry: dict[str, Any] | None) -> str | None:
    """Why a budget entry has no point in every seed (``None``: it has)."""
    if entry is None:
        return "no validated point in this study"
    absent = [seed for seed, value in zip(entry["seeds"], entry["values"], strict=True) if value is None]
    return f"no point within the cost in seeds {absent}" if absent else None


def _least_point(method: str, name: str, ours: dict[str, Any] | None, least: float) -> Clause:
    if (why := _missing(ours)) is not None:
        return Clause(method, name, MISSED, why)
    assert ours is not None
    mean = float(ours["mean"])
    return Clause(method, name, MET if mean >= least else MISSED, f"{mean:.3f} ({mean - least:+.3f})")


def _above_best(method: str, name: str, ours: dict[str, Any] | None, best: dict[str, Any] | None) -> Clause:
    if best is None:
        return Clause(method, name, OPEN, "no reference has a point within the cost in every seed")
    if (why := _missing(ours)) is not None:
        return Clause(method, name, MISSED, why)
    assert ours is not None
    test = paired_t_test([a - b for a, b in zip(ours["values"], best["values"], strict=True)])
    p = "" if test.p_value is None else f", paired t p = {test.p_value:.2g}"
    text = (
        f"{float(ours['mean']):.3f} against {best['method']} {float(best['mean']):.3f} ({test.mean:+.3f}{p})"
    )
    return Clause(method, name, MET if test.mean >= 0 else MISSED, text)


def _clean_by_seed(rows: Sequence[Row]) -> dict[int, float]:
    return {r["seed"]: clean for r in rows if (clean := r.get("clean_accuracy")) is not None}


def _clean_budget(goal: Goal, method: str, cells: list[Row], rows: Sequence[Row]) -> Clause:
    dense = _clean_by_seed([r for r in rows if r["target"] == "dense"])
    ours = _clean_by_seed(cells)
    costs = {seed: dense[seed] - clean for seed, clean in ours.items() if seed in dense}
    within = sum(cost <= goal.clean_budget + 1e-12 for cost in costs.values())
    name = f"clean accuracy within {100 * goal.clean_budget:g} points of the dense model in every seed"
    if not costs:
        return Clause(method, name, OPEN, "no dense model to compare with")
    worst = max(costs.values())
    status = MET if within == len(costs) else MISSED
    return Clause(
        method, name, status, f"{within} of {len(costs)} seeds; largest cost {100 * worst:.1f} points"
    )


def _no_leaking(method: str, cells: list[Row]) -> Clause:
    leaking = sorted({f"{r['threat_model']} {r['attack']}" for r in cells if r.get("transfer_exceeds_clean")})
    name = "no label leaking (transfer above clean accuracy) under any attacker"
    if leaking:
        return Clause(method, name, MISSED, "leaks under " + ", ".join(leaking))
    return Clause(method, name, MET, f"none in {len(cells)} cells")


def _transfer(method: str, threat: str, attack: str, least: float, cells: list[Row]) -> Clause:
    name = f"{attack.upper()} from {threat}: mean transfer accuracy >= {least:.2f}"
    if not cells:
        return Clause(method, name, OPEN, "not run in this study")
    mean = float(np.mean([r["transfer_accuracy"] for r in cells]))
    leaking = [r["seed"] for r in cells if r.get("transfer_exceeds_clean")]
    if leaking:
        return Clause(method, name, MISSED, f"{mean:.3f}, label leaking in seeds {leaking}: not counted")
    return Clause(method, name, MET if mean >= least else MISSED, f"{mean:.3f} ({mean - least:+.3f})")


def _against(goal: Goal, method: str, baseline: str, threat: str, attack: str) -> Comparison:
    at = f"@{goal.ratio:g}x"
    return Comparison(method + at, baseline + at, attack, threat)


def _paired_tests(
    goal: Goal, methods: Sequence[str], rows: Sequence[Row], eps: float
) -> dict[Comparison, PrimaryResult]:
    """Every paired clause's comparison tested across seeds, Holm over the goal's paired
    clauses alone (the goal's family, fixed by the goal file)."""
    comparisons = [
        _against(goal, method, baseline, threat, attack)
        for method in methods
        for threat in goal.attackers
        for attack in goal.attacks
        for baseline in goal.baselines
    ]
    return {r.comparison: r for r in compare_across_seeds(rows, comparisons, eps, goal.alpha)}


def _paired(goal: Goal, method: str, comparison: Comparison, result: PrimaryResult | None) -> Clause:
    name = (
        f"{(comparison.attack or '').upper()} from {comparison.threat_model}: better than "
        f"{comparison.second.rsplit('@', 1)[0]} across seeds (paired t, Holm p < {goal.alpha:g})"
    )
    if result is None or result.outcome == UNTESTED:
        return Clause(method, name, OPEN, result.reason if result else "no paired test in this study")
    status = MET if result.outcome == BETTER else MISSED
    return Clause(method, name, status, result.found())


def _per_seed(rows: Sequence[Row]) -> list[Row]:
    """One row per seed (the worst-attacker figure is the same in every row of a seed)."""
    return list({r["seed"]: r for r in rows}.values())


def _worst_attacker(goal: Goal, method: str, cells: list[Row], rows: Sequence[Row]) -> list[Clause]:
    least = goal.worst_attacker
    assert least is not None
    ours = [r for r in _per_seed(cells) if r.get("worst_attacker_transfer_accuracy") is not None]
    name = f"worst-attacker transfer accuracy >= {least:.2f} (every attacker and attack run)"
    if not ours:
        return [Clause(method, name, OPEN, "no worst-attacker figure in this study")]
    mean = float(np.mean([r["worst_attacker_transfer_accuracy"] for r in ours]))
    clauses = [Clause(method, name, MET if mean >= least else MISSED, f"{mean:.3f} ({mean - least:+.3f})")]
    for reference in goal.references:
        theirs = _per_seed([r for r in rows if r["target"] == reference])
        label = "worst attacker"
        clauses.append(_reference(method, reference, label, ours, theirs, "worst_attacker_transfer_accuracy"))
    return clauses


def _reference(
    method: str, reference: str, label: str, ours: list[Row], theirs: list[Row], score: str
) -> Clause:
    """``method`` no worse than ``reference`` on ``score`` at equal clean cost: met when it
    scores at least as high, missed when the reference also keeps as much clean accuracy,
    open when the reference pays more clean accuracy (no common clean cost to compare at)."""
    name = f"{label}: no worse than {reference} at equal clean cost"
    if not ours or not theirs:
        return Clause(method, name, OPEN, "not run in this study")
    clean, ref_clean = (float(np.mean([r["clean_accuracy"] for r in rows])) for rows in (ours, theirs))
    value, ref_value = (float(np.mean([metric(r, score) for r in rows])) for rows in (ours, theirs))
    text = f"{value:.3f} against {ref_value:.3f}; clean {clean:.3f} against {ref_clean:.3f}"
    if any(r.get("transfer_exceeds_clean") for r in ours) and score == "transfer_accuracy":
        return Clause(method, name, MISSED, text + ", label leaking: not counted")
    if value >= ref_value:
        return Clause(method, name, MET, text)
    if ref_clean >= clean:
        return Clause(method, name, MISSED, text)
    return Clause(method, name, OPEN, text + " (the reference pays more clean accuracy: not comparable)")
