"""Statistics over a study's rows: the summary per (attack, target, threat model, eps) that
reports and plots read, transfer accuracy at clean-accuracy budgets, and paired tests (the
flags they read come from :mod:`gap_art.bench.flags`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from gap_art.bench.rows import Row, metric, unpack_correct
from gap_art.bench.target_names import PICK
from gap_art.evaluation.metrics import holm, mcnemar_exact, t_interval
from gap_art.settings import PRETRAINING

if TYPE_CHECKING:
    from gap_art.bench.primary import PrimaryResult

Cell = tuple[float, float, float] | None
METRICS = (
    "clean_accuracy",
    "transfer_accuracy",
    "whitebox_accuracy",
    "worst_case_transfer_accuracy",
    "worst_attacker_transfer_accuracy",
    "transfer_success_rate",
    "source_whitebox_accuracy",
    "autoattack_accuracy",
)
HEADLINE = "worst_attacker_transfer_accuracy"
"""Each target's headline: its transfer accuracy under the strongest attacker and attack run."""
BUDGETS = (0.01, 0.02, 0.05, 0.10)
"""Clean-accuracy budgets: how far below the dense model's clean accuracy a method may go."""
SIGNIFICANCE = 0.05

Key = tuple[str, str, str, float]
"""(attack, target, threat model, eps)"""


def summarize(rows: Sequence[Row]) -> dict[Key, dict[str, Any]]:
    """Per (attack, target, threat model, eps): each metric's mean over seeds and 95% interval.

    One seed: the Wilson interval over examples. Several seeds: the Student t interval of
    the mean across seeds (the seed-to-seed spread, which includes the example noise).
    """
    groups: dict[Key, list[Row]] = defaultdict(list)
    for row in rows:
        if not row.get("error"):
            groups[(row["attack"], row["target"], row["threat_model"], row["eps"])].append(row)
    summary = {}
    for key, members in groups.items():
        entry: dict[str, Any] = {
            "target": key[1],
            "family": members[0]["family"],
            "method": members[0]["method"],
            "requested_compression": members[0]["requested_compression"],
            "compression": float(np.mean([m["compression"] or 1.0 for m in members])),
            "size_bytes": float(np.mean([m["size_bytes"] or 0 for m in members])),
            "seeds": len(members),
            "trustworthy": all(m.get("trustworthy") is not False for m in members),
            "collapsed_classes": sorted({c for m in members for c in m.get("collapsed_classes") or []}),
            "transfer_exceeds_clean": any(m.get("transfer_exceeds_clean") for m in members),
            "adversarial": members[0].get("gap_eps") is not None,  # pruned by a GAP criterion
        }
        for name in METRICS:
            values = [metric_value for m in members if (metric_value := metric(m, name)) is not None]
            entry[name] = _mean_interval(values, members, name)
        summary[key] = entry
    return summary


def _mean_interval(values: list[float], members: list[Row], name: str) -> Cell:
    if not values:
        return None
    mean = float(np.mean(values))
    if len(values) == 1:
        low = metric(members[0], f"{name}_ci_low")
        high = metric(members[0], f"{name}_ci_high")
        return (mean, low if low is not None else mean, high if high is not None else mean)
    _, low, high = t_interval(values)
    return (mean, max(0.0, low), min(1.0, high))


def is_candidate(row: Row) -> bool:
    """A pruning target whose method claims transfer robustness (a GAP criterion, pruning in
    rounds, a hardening, or an ART defence before pruning): the first of every paired test."""
    modified = any(mark in str(row["method"]) for mark in ("+", PRETRAINING))
    return row["family"] == "pruning" and (row.get("gap_eps") is not None or modified)


def curve_target(row: Row) -> str:
    """The target a row's model comes from, an epoch picked from its curve counted as the
    target itself (``magnitude+pool@4x`` for ``magnitude+pool@4x~2pt``)."""
    return str(row["target"]).split(PICK, 1)[0]


def method_label(row: Row) -> str:
    """The method a target comes from, without its ratio (``gap-grad`` for ``gap-grad@4x``)."""
    return curve_target(row).rsplit("@", 1)[0]


def upper_envelope(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The (clean, transfer) points no other point beats on both, by increasing clean accuracy."""
    frontier: list[tuple[float, float]] = []
    for clean, transfer in sorted(points, key=lambda p: (-p[0], -p[1])):
        if not frontier or transfer > frontier[-1][1]:
            frontier.append((clean, transfer))
    return frontier[::-1]


class BudgetPoint(NamedTuple):
    """A kept model as the budgets see it: chosen on validation, scored on test."""

    validation_clean: float
    validation_transfer: float
    score: float
    """Its test score (transfer or worst-attacker accuracy)."""
    clean: float | None = None
    """Its test clean accuracy."""
    target: str = ""


def chosen_within_budget(points: Sequence[BudgetPoint], level: float) -> BudgetPoint | None:
    """The kept model validation picks: among those whose validation clean accuracy is at
    least ``level``, the one with the highest validation transfer accuracy (``None``: none
    qualifies; never a substitute, never interpolated, and the test split chooses nothing)."""
    eligible = [p for p in points if p[0] >= level]
    return max(eligible, key=lambda p: (p[1], p[0])) if eligible else None


def select_within_budget(points: Sequence[BudgetPoint], level: float) -> float | None:
    """The test score of the model :func:`chosen_within_budget` picks (``None``: none)."""
    chosen = chosen_within_budget(points, level)
    return None if chosen is None else chosen[2]  # a plain (clean, transfer, score) tuple too


def _budget_points(
    rows: Sequence[Row], attack: str, eps: float, score: str, group: Callable[[Row], str]
) -> dict[tuple[int, str], list[BudgetPoint]]:
    """Per (seed, method): the kept models of every ratio (pruning) or the defended model (ART's
    defences), under ``attack`` from the dense model, that were scored on the validation rows
    and show neither a collapsed class nor label leaking (transfer above clean accuracy), with
    their test ``score``."""
    points: dict[tuple[int, str], list[BudgetPoint]] = defaultdict(list)
    for row in rows:
        usable = row["attack"] == attack and row["threat_model"] == "dense" and row["eps"] == eps
        flagged = row.get("error") or row.get("collapsed_classes") or row.get("transfer_exceeds_clean")
        clean, transfer = row.get("validation_clean_accuracy"), row.get("validation_transfer_accuracy")
        test = metric(row, score)
        if not usable or flagged or clean is None or transfer is None or test is None:
            continue
        if row["family"] in ("pruning", "art_defence"):
            test_clean = metric(row, "clean_accuracy")
            point = BudgetPoint(clean, transfer, test, test_clean, row["target"])
            points[(row["seed"], group(row))].append(point)
    return points


def budget_table(
    rows: Sequence[Row],
    attack: str,
    eps: float,
    budgets: Sequence[float] = BUDGETS,
    score: str = "transfer_accuracy",
    group: Callable[[Row], str] = method_label,
) -> list[dict[str, Any]]:
    """Transfer accuracy each method reaches within each clean-accuracy budget below the dense
    model, selected on the validation rows (``attack`` from the dense model) and scored on the
    test examples by ``score`` (``transfer_accuracy`` under that attack, or :data:`HEADLINE`);
    per seed, then the mean with a t interval when every seed has a point; see
    :func:`select_within_budget`. ``group`` says what one entry chooses among: by default a
    method's models of every ratio; :func:`curve_target`, one ratio's model and its picks.

    :return: One entry per (method, budget): ``values`` per seed (``None``: no point within
        the budget), the chosen ``targets`` and their test ``clean`` accuracy per seed (of ``seeds``),
        ``mean``/``low``/``high`` (``None`` unless every seed has a point) and
        ``best`` (the highest mean of that budget).
    """
    dense: dict[int, float] = {}
    for r in rows:
        level = r.get("validation_clean_accuracy")
        if r["target"] == "dense" and r["attack"] == attack and level is not None:
            dense[r["seed"]] = level
    points = _budget_points(rows, attack, eps, score, group)
    seeds = sorted(dense)
    entries: list[dict[str, Any]] = []
    for method in dict.fromkeys(m for _, m in points):
        for budget in budgets:
            chosen = [chosen_within_budget(points.get((s, method), []), dense[s] - budget) for s in seeds]
            values = [None if c is None else c[2] for c in chosen]
            complete = [v for v in values if v is not None]
            mean, low, high = t_interval(complete) if len(complete) == len(seeds) else (None, None, None)
            if low is not None and high is not None:  # accuracies: the interval stays in [0, 1]
                low, high = max(0.0, low), min(1.0, high)
            entries.append({
                "method": method, "budget": budget, "score": score, "values": values,
                "mean": mean, "low": low, "high": high,
                "seeds": seeds,
                "targets": [None if c is None else c.target for c in chosen],
                "clean": [None if c is None else c.clean for c in chosen],
            })  # fmt: skip
    for budget in budgets:
        ranked = [e for e in entries if e["budget"] == budget and e["mean"] is not None]
        top = max((float(e["mean"]) for e in ranked), default=None)
        for entry in ranked:
            entry["best"] = entry["mean"] == top
    return entries


def paired_tests(rows: Sequence[Row], eps: float) -> list[dict[str, Any]]:
    """Exact McNemar tests of transfer correctness on the same examples: every candidate
    (:func:`is_candidate`: GAP, iterative or hardened) against every other pruning target at
    the same ratio, seed, attack and threat model. The tests are one family: each carries its
    Holm-adjusted p-value (``p_holm``), which every win and loss reads, and ``leaking`` when
    either cell shows transfer above clean accuracy (such a test counts as no win or loss)."""
    groups: dict[tuple[Any, ...], list[Row]] = defaultdict(list)
    for row in rows:
        if (
            row["family"] == "pruning"
            and row["eps"] == eps
            and row.get("transfer_correct")
            and not row.get("error")
        ):
            groups[(row["seed"], row["attack"], row["threat_model"], row["requested_compression"])].append(
                row
            )
    tests = []
    for (seed, attack, threat, ratio), members in groups.items():
        for i, first in enumerate(members):
            if not is_candidate(first):
                continue
            for second in members:
                if second is first or (is_candidate(second) and members.index(second) < i):
                    continue
                test = mcnemar_exact(unpack_correct(first), unpack_correct(second))
                leaking = bool(first.get("transfer_exceeds_clean") or second.get("transfer_exceeds_clean"))
                tests.append({
                    "seed": seed, "attack": attack, "threat_model": threat, "ratio": ratio,
                    "first": method_label(first), "second": method_label(second), "leaking": leaking,
                    **asdict(test),
                })  # fmt: skip
    for entry, adjusted in zip(tests, holm([t["p_value"] for t in tests]), strict=True):
        entry["p_holm"] = adjusted
    return tests


def combine_paired(tests: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per comparison across seeds: each seed's difference and p-value (raw and Holm-adjusted
    over the report's family of tests), the mean difference, and how many seeds show a
    significant win or loss (Holm-adjusted p < 0.05)."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for t in tests:
        groups[(t["attack"], t["threat_model"], t["ratio"], t["first"], t["second"])].append(t)
    combined = []
    for (attack, threat, ratio, first, second), members in groups.items():
        significant = [m for m in members if m["p_holm"] < SIGNIFICANCE and not m["leaking"]]
        combined.append({
            "attack": attack, "threat_model": threat, "ratio": ratio, "first": first, "second": second,
            "seeds": [m["seed"] for m in members],
            "differences": [m["difference"] for m in members],
            "p_values": [m["p_value"] for m in members],
            "p_holm": [m["p_holm"] for m in members],
            "leaking_seeds": sum(m["leaking"] for m in members),
            "mean_difference": float(np.mean([m["difference"] for m in members])),
            "significant_wins": sum(m["difference"] > 0 for m in significant),
            "significant_losses": sum(m["difference"] < 0 for m in significant),
        })  # fmt: skip
    return combined


@dataclass
class Analysis:
    """A study's cross-cell statistics, computed once for every output that shows them."""

    summary: dict[Key, dict[str, Any]]
    budgets: list[dict[str, Any]]
    """Scored by the worst attacker (:data:`HEADLINE`)."""
    primary_budgets: list[dict[str, Any]]
    """Scored by the primary attack from the dense model."""
    paired: list[dict[str, Any]]
    """Per seed."""
    combined: list[dict[str, Any]]
    """Across seeds."""
    primary: list[PrimaryResult] = field(default_factory=list)
    """The pre-registered comparisons, tested across seeds (:mod:`gap_art.bench.primary`):
    the only source of the verdict's "A beats B"; the McNemar tests above are exploratory."""


def study_budgets(curve_budgets: Sequence[float]) -> list[float]:
    """The clean-accuracy budgets a study's tables and frontier show: :data:`BUDGETS` and
    those its training curves picked epochs for."""
    return sorted({*BUDGETS, *curve_budgets})


def analyse(rows: Sequence[Row], attack: str, eps: float, budgets: Sequence[float] = BUDGETS) -> Analysis:
    """Summary, clean-accuracy ``budgets`` (for ``attack``) and paired tests of a study's rows."""
    paired = paired_tests(rows, eps)
    worst = budget_table(rows, attack, eps, budgets, HEADLINE)
    primary = budget_table(rows, attack, eps, budgets)
    return Analysis(summarize(rows), worst, primary, paired, combine_paired(paired))
