"""The study's plots. :func:`plot_specs` says what each figure shows (pure data, tested);
:mod:`gap_art.bench.drawing` renders them with matplotlib.

Colours and markers are fixed per method (:mod:`gap_art.bench.palette`). Each
compressed point is labelled with its ratio (an int8 target with its parent's: ``4x int8``), and
a target with a collapsed class ("collapsed") or label leaking ("‡") says so beside its point;
a label that would overprint another is moved, or left out and counted in the caption, which
also says what the error bars are. Legends sit outside the axes."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gap_art.bench.attack_roles import primary_attack
from gap_art.bench.config import BenchConfig
from gap_art.bench.palette import MARKERS, colour, marker
from gap_art.bench.rows import Row
from gap_art.bench.summary import (
    HEADLINE,
    Key,
    budget_table,
    curve_target,
    study_budgets,
    summarize,
    upper_envelope,
)


@dataclass
class Series:
    """One legend entry: points (and their intervals) of one method in one variant."""

    label: str
    colour: str
    marker: str
    x: list[float]
    y: list[float]
    x_err: list[tuple[float, float]] = field(default_factory=list)
    y_err: list[tuple[float, float]] = field(default_factory=list)
    line: bool = False
    line_style: str = "-"
    """Matplotlib's line style, where ``line``."""
    notes: list[str] = field(default_factory=list)
    """Text beside each point: its ratio and its flags (empty: none)."""


@dataclass
class Plot:
    """What one PNG shows."""

    name: str
    title: str
    x_label: str
    y_label: str
    series: list[Series]
    frontier: list[tuple[float, float]] = field(default_factory=list)
    frontier_label: str = "frontier (no collapsed class)"
    log_x: bool = False
    caption: str = ""
    """Below the axes: what the error bars are."""


def _ratio_label(entry: dict[str, Any]) -> str:
    """A compressed target's label: its requested ratio (``4x``), an int8 target's parent's
    (``4x int8``, ``int8`` for the dense model's), none for the others."""
    if entry["family"] == "quantization":
        parent = str(entry.get("target", "")).removesuffix("+int8")
        ratio = parent.rsplit("@", 1)[1] if "@" in parent else ""
        return f"{ratio} int8".strip()
    if entry["family"] == "pruning" and entry.get("requested_compression"):
        return f"{entry['requested_compression']:g}x"
    return ""


def _note(entry: dict[str, Any]) -> str:
    """A point's label: the ratio of a compressed target, and its flags."""
    parts = [ratio] if (ratio := _ratio_label(entry)) else []
    if entry.get("collapsed_classes"):
        parts.append("collapsed")
    if entry.get("transfer_exceeds_clean"):
        parts.append("‡")
    return " ".join(parts)


def _interval(cell: tuple[float, float, float]) -> tuple[float, float]:
    return (cell[0] - cell[1], cell[2] - cell[0])


def _series_by_method(entries: list[dict[str, Any]], x_of: Any, y_metric: str, line: bool) -> list[Series]:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for e in entries:
        groups[(e["method"], e["family"])].append(e)
    series = []
    for (method, family), members in sorted(groups.items(), key=lambda g: (g[0][1] != "baseline", g[0])):
        members.sort(key=lambda e: e["compression"])
        label = "dense" if method == "dense" else method + (" (ART)" if family == "art_defence" else "")
        series.append(
            Series(
                label=label,
                colour=colour(method, family, bool(members[0].get("adversarial"))),
                marker=marker(method, family),
                x=[x_of(e) for e in members],
                y=[e[y_metric][0] for e in members],
                x_err=[_interval(e["clean_accuracy"]) for e in members] if not line else [],
                y_err=[_interval(e[y_metric]) for e in members],
                line=line and family in ("pruning", "quantization"),
                notes=[_note(e) for e in members],
            )
        )
    return series


def _dense_entries(summary: dict[Key, dict[str, Any]], attack: str, eps: float) -> list[dict[str, Any]]:
    return [
        e
        for (a, _, threat, ep), e in summary.items()
        if a == attack and threat == "dense" and ep == eps and e["transfer_accuracy"] and e["clean_accuracy"]
    ]


def pareto_plot(summary: dict[Key, dict[str, Any]], config: BenchConfig, attack: str) -> Plot | None:
    """Clean against transfer accuracy of every target, with the frontier of sound targets
    (no collapsed class, no label leaking)."""
    title = f"{config.data_name}: clean against transfer accuracy ({attack.upper()} from the dense model)"
    return _pareto(summary, config, attack, "transfer_accuracy", f"pareto_{attack}.png", title)


def worst_attacker_pareto_plot(summary: dict[Key, dict[str, Any]], config: BenchConfig) -> Plot | None:
    """Clean against worst-attacker transfer accuracy (the headline) of every target."""
    title = f"{config.data_name}: clean against worst-attacker transfer accuracy (every attacker and attack)"
    return _pareto(summary, config, primary_attack(config), HEADLINE, WORST_PARETO, title)


WORST_PARETO = "pareto_worst_attacker.png"
FRONTIER = "frontier_worst_attacker.png"
RATIO_STYLES = ("-", "--", "-.", ":")  # one method's ratios on the frontier: one colour, these styles
HEADLINE_FIGURES = {
    FRONTIER: "The frontier: worst-attacker transfer accuracy within each clean cost",
    WORST_PARETO: "Clean against worst-attacker transfer accuracy",
}
"""The report's first figures (file name: heading), after its verdict."""


def frontier_plot(rows: Sequence[Row], config: BenchConfig) -> Plot | None:
    """The headline (issue 37): per target (a method at one ratio, with its curve's picks), the
    worst-attacker accuracy of the model validation picks within each clean cost (the budget
    table's rule, test-scored, t intervals over seeds; no marker where a seed has none), a line
    per target with its ratio at its end, and ART's defences' best per cost as the reference."""
    budgets = study_budgets(config.curve_budgets)
    table = budget_table(rows, primary_attack(config), config.attack_eps, budgets, HEADLINE, curve_target)
    entries = [e for e in table if e["mean"] is not None]
    if not entries:
        return None
    kinds = {curve_target(r): (r["method"], r["family"], bool(r.get("adversarial"))) for r in rows}
    series: list[Series] = []
    targets = list(dict.fromkeys(e["method"] for e in entries))
    for i, target in enumerate(targets):
        method, family, adversarial = kinds[target]
        points = [e for e in entries if e["method"] == target]
        series.append(
            Series(
                label=f"{method} (ART)" if family == "art_defence" else target,
                colour=colour(method, family, adversarial),
                marker=marker(method, family),
                x=[100 * e["budget"] for e in points],
                y=[e["mean"] for e in points],
                y_err=[(e["mean"] - e["low"], e["high"] - e["mean"]) for e in points],
                line=True,
                line_style=RATIO_STYLES[sum(kinds[t][0] == method for t in targets[:i]) % len(RATIO_STYLES)],
                notes=[""] * (len(points) - 1) + [target.rpartition("@")[2] if "@" in target else ""],
            )
        )
    art = {
        b: [e["mean"] for e in entries if e["budget"] == b and kinds[e["method"]][1] == "art_defence"]
        for b in budgets
    }
    reference = [(100 * b, max(means)) for b, means in art.items() if means]
    return Plot(
        name=FRONTIER,
        title=f"{config.data_name}: worst-attacker transfer accuracy within each clean cost",
        x_label="clean cost: points of clean accuracy below the dense model (chosen on validation)",
        y_label="worst-attacker transfer accuracy (test)",
        series=series,
        frontier=reference,
        frontier_label="ART's defences: the best per cost",
        caption=_error_bars(config),
    )


def _pareto(
    summary: dict[Key, dict[str, Any]], config: BenchConfig, attack: str, y_metric: str, name: str, title: str
) -> Plot | None:
    entries = [e for e in _dense_entries(summary, attack, config.attack_eps) if e[y_metric]]
    if not entries:
        return None
    sound = [
        (e["clean_accuracy"][0], e[y_metric][0])
        for e in entries
        if not e["collapsed_classes"] and not e["transfer_exceeds_clean"]
    ]
    return Plot(
        name=name,
        title=title,
        x_label="clean accuracy",
        y_label=y_metric.replace("_", " "),
        series=_series_by_method(entries, lambda e: e["clean_accuracy"][0], y_metric, line=False),
        frontier=upper_envelope(sound),
        caption=_error_bars(config),
    )


def _error_bars(config: BenchConfig) -> str:
    """What a plot's error bars are, for its caption."""
    seeds = len(config.seeds)
    if seeds == 1:
        return "Error bars: 95% Wilson intervals over the test examples (one seed)."
    return f"Error bars: 95% Student t intervals of the mean over {seeds} seeds."


def compression_plot(summary: dict[Key, dict[str, Any]], config: BenchConfig, attack: str) -> Plot | None:
    """Transfer accuracy against the measured compression (int8 targets at their true ratio)."""
    entries = [e for e in _dense_entries(summary, attack, config.attack_eps) if e["family"] != "art_defence"]
    ratios = {e["requested_compression"] for e in entries if e["family"] == "pruning"}
    if len(ratios) < 2:  # one ratio: a line against compression would mean nothing
        return None
    return Plot(
        name=f"transfer_vs_compression_{attack}.png",
        title=f"{config.data_name}: transfer accuracy against compression ({attack.upper()})",
        x_label="compression (prunable weights / nonzero, measured)",
        y_label="transfer accuracy",
        series=_series_by_method(entries, lambda e: e["compression"], "transfer_accuracy", line=True),
        log_x=True,
        caption=_error_bars(config),
    )


def security_plot(summary: dict[Key, dict[str, Any]], config: BenchConfig, attack: str) -> Plot | None:
    """Transfer accuracy against eps for each float target swept (``curve_eps``)."""
    points: dict[str, list[tuple[float, dict[str, Any]]]] = defaultdict(list)
    for (a, target, threat, eps), e in summary.items():
        if (
            a == attack
            and threat == "dense"
            and e["family"] in ("baseline", "pruning")
            and e["transfer_accuracy"]
        ):
            points[target].append((eps, e))
    if not any(len(p) > 1 for p in points.values()):
        return None
    series = []
    for target, members in sorted(points.items()):
        members.sort(key=lambda p: p[0])
        method = members[0][1]["method"]
        series.append(
            Series(
                target,
                colour(method, members[0][1]["family"], bool(members[0][1].get("adversarial"))),
                MARKERS[members[0][1]["family"]],
                [p[0] for p in members],
                [p[1]["transfer_accuracy"][0] for p in members],
                line=True,
            )
        )
    return Plot(
        name=f"security_curve_{attack}.png",
        title=f"{config.data_name}: transfer accuracy against eps ({attack.upper()} from the dense model)",
        x_label="eps (L-inf)",
        y_label="transfer accuracy",
        series=series,
    )


def plot_specs(rows: Sequence[Row], config: BenchConfig) -> list[Plot]:
    """Every figure of a study: per attack, the Pareto view, transfer against compression, and
    the security curve when eps was swept."""
    summary = summarize(rows)
    plots = [
        p for p in (frontier_plot(rows, config), worst_attacker_pareto_plot(summary, config)) if p is not None
    ]
    for attack in config.attacks:
        for make in (pareto_plot, compression_plot, security_plot):
            plot = make(summary, config, attack)
            if plot is not None:
                plots.append(plot)
    return plots
