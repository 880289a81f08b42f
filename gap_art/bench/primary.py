"""Pre-registered primary comparisons tested: the few method-against-method questions a study
is run to answer (:mod:`gap_art.bench.comparisons`: named before it runs), each tested once
across seeds, with the training seed as the unit of replication, and Holm-corrected over that
family only. Adding a method to a study does not change them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

from gap_art.bench.comparisons import Comparison, primary_comparisons
from gap_art.bench.config import BenchConfig
from gap_art.bench.rows import Row, metric
from gap_art.bench.summary import HEADLINE, SIGNIFICANCE
from gap_art.evaluation.metrics import holm, paired_t_test

BETTER, WORSE, NO_DIFFERENCE, FLAGGED, UNTESTED = (
    "better",
    "worse",
    "no significant difference",
    "flagged",
    "untested",
)


@dataclass(frozen=True)
class PrimaryResult:
    """One primary comparison, tested across seeds.

    :param comparison: What is compared.
    :param seeds: The seeds where both targets have a score.
    :param first_scores: ``first``'s score per seed (transfer or worst-attacker accuracy).
    :param second_scores: ``second``'s, likewise.
    :param mean_difference: Mean of ``first`` minus ``second`` over the seeds.
    :param low: Lower end of the difference's 95% Student t interval over seeds.
    :param high: Upper end.
    :param p_value: Two-sided paired t-test over seeds (``None``: untested).
    :param p_holm: ``p_value`` Holm-adjusted over the primary family (an untested comparison
        counts as p = 1, so the family's size is what was registered).
    :param outcome: ``better``, ``worse``, ``no significant difference``, ``flagged`` (a cell
        of either target leaks labels or lost a class: no conclusion) or ``untested``.
    :param reason: Why a comparison is flagged or untested.
    """

    comparison: Comparison
    seeds: tuple[int, ...]
    first_scores: tuple[float, ...]
    second_scores: tuple[float, ...]
    mean_difference: float | None
    low: float | None
    high: float | None
    p_value: float | None
    p_holm: float | None
    outcome: str
    reason: str = ""

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "comparison": str(self.comparison)}

    def said(self) -> str:
        """The comparison and what its test found (:meth:`found`)."""
        return f"{self.comparison}: {self.found()}"

    def found(self) -> str:
        """Its mean difference with interval, adjusted p and outcome (or why it is untested)."""
        if self.mean_difference is None or self.p_holm is None:
            return f"{self.outcome} ({self.reason})"
        interval = f" [{self.low:+.3f}, {self.high:+.3f}]" if self.low is not None else ""
        outcome = self.outcome + (f" ({self.reason})" if self.reason else "")
        return f"{self.mean_difference:+.3f}{interval}, Holm p = {self.p_holm:.2g}, {outcome}"


def _cells(rows: Sequence[Row], target: str, comparison: Comparison, eps: float) -> dict[int, list[Row]]:
    """Per seed, the rows a target's score reads: one cell, or every cell of the worst attacker."""
    chosen: dict[int, list[Row]] = {}
    for row in rows:
        if row["target"] != target or row["eps"] != eps or row.get("error"):
            continue
        if comparison.attack is None or (row["attack"], row["threat_model"]) == (
            comparison.attack,
            comparison.threat_model,
        ):
            chosen.setdefault(row["seed"], []).append(row)
    return chosen


def _score(cells: list[Row], comparison: Comparison) -> float | None:
    field = "transfer_accuracy" if comparison.attack is not None else HEADLINE
    values = [value for r in cells if (value := metric(r, field)) is not None]
    return values[0] if values else None


def _flags(target: str, cells: dict[int, list[Row]]) -> list[str]:
    """What takes a target's cells out of a conclusion: label leaking or a collapsed class,
    with the seeds it shows in."""
    flags = []
    for flag, field in (
        ("label leaking", "transfer_exceeds_clean"),
        ("a collapsed class", "collapsed_classes"),
    ):
        seeds = [seed for seed, rows in sorted(cells.items()) if any(r.get(field) for r in rows)]
        if seeds:
            flags.append(f"{target}: {flag} in seed(s) {', '.join(map(str, seeds))}")
    return flags


def _untested(comparison: Comparison, reason: str, seeds: Sequence[int] = ()) -> PrimaryResult:
    return PrimaryResult(comparison, tuple(seeds), (), (), None, None, None, None, None, UNTESTED, reason)


def _measure(rows: Sequence[Row], comparison: Comparison, eps: float) -> PrimaryResult:
    """One comparison's per-seed scores and its paired t-test (not yet Holm-adjusted)."""
    first, second = (_cells(rows, t, comparison, eps) for t in (comparison.first, comparison.second))
    missing = [t for t, cells in ((comparison.first, first), (comparison.second, second)) if not cells]
    if missing:
        return _untested(comparison, f"no cell of {' or '.join(missing)} in this study")
    scores = {}
    for seed in sorted(set(first) & set(second)):
        a, b = _score(first[seed], comparison), _score(second[seed], comparison)
        if a is not None and b is not None:
            scores[seed] = (a, b)
    if len(scores) < 2:
        return _untested(
            comparison, f"a score in {len(scores)} seed(s): the test needs 2 or more", list(scores)
        )
    seeds = tuple(scores)
    test = paired_t_test([a - b for a, b in scores.values()])
    flags = [
        flag
        for target, cells in ((comparison.first, first), (comparison.second, second))
        for flag in _flags(target, {seed: cells[seed] for seed in seeds})
    ]
    return PrimaryResult(
        comparison,
        seeds,
        first_scores=tuple(a for a, _ in scores.values()),
        second_scores=tuple(b for _, b in scores.values()),
        mean_difference=test.mean,
        low=test.low,
        high=test.high,
        p_value=test.p_value,
        p_holm=None,  # set over the family by compare_across_seeds
        outcome=FLAGGED if flags else NO_DIFFERENCE,
        reason="; ".join(flags),
    )


def _outcome(result: PrimaryResult, p_holm: float, alpha: float) -> str:
    if result.outcome == FLAGGED:
        return FLAGGED
    if p_holm >= alpha or not result.mean_difference:
        return NO_DIFFERENCE
    return BETTER if result.mean_difference > 0 else WORSE


def compare_across_seeds(
    rows: Sequence[Row], comparisons: Sequence[Comparison], eps: float, alpha: float = SIGNIFICANCE
) -> list[PrimaryResult]:
    """Test each comparison across seeds (paired t on the per-seed differences, see
    :func:`~gap_art.evaluation.metrics.paired_t_test`) and Holm-correct over ``comparisons``
    alone: the outcome is ``better`` or ``worse`` where the adjusted p is below ``alpha`` and
    no cell of either target is flagged."""
    measured = [_measure(rows, comparison, eps) for comparison in comparisons]
    adjusted = holm([1.0 if r.p_value is None else r.p_value for r in measured])
    results = []
    for result, p_holm in zip(measured, adjusted, strict=True):
        if result.p_value is None:
            results.append(result)
            continue
        results.append(replace(result, p_holm=p_holm, outcome=_outcome(result, p_holm, alpha)))
    return results


def primary_results(rows: Sequence[Row], config: BenchConfig) -> list[PrimaryResult]:
    """The study's primary family (:func:`primary_comparisons`), tested at its nominal eps."""
    return compare_across_seeds(rows, primary_comparisons(config), config.attack_eps)


def holm_family_note(results: Sequence[PrimaryResult]) -> str:
    seeds = sorted({len(r.seeds) for r in results if r.p_value is not None})
    counted = "/".join(str(n) for n in seeds) or "no"
    return (
        f"named before the run; a paired t-test over {counted} seeds of the per-seed difference, "
        f"Holm over the {len(results)} primary comparison(s), alpha {SIGNIFICANCE:g}"
    )
