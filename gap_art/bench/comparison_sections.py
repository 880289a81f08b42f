"""The report's sections that compare methods with each other: the primary comparisons (the
verdict's only source of "A beats B") and the exploratory per-seed paired tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gap_art.bench.attack_roles import primary_attack
from gap_art.bench.config import BenchConfig
from gap_art.bench.document import Document
from gap_art.bench.primary import PrimaryResult, holm_family_note


def primary_section(doc: Document, results: Sequence[PrimaryResult]) -> None:
    """Every pre-registered comparison: per-seed scores, the mean difference with its t
    interval over seeds, raw and Holm-adjusted p, and the outcome."""
    if not results:
        return
    table = []
    for r in results:
        scores = ", ".join(f"{a:.3f}/{b:.3f}" for a, b in zip(r.first_scores, r.second_scores, strict=True))
        interval = "" if r.low is None else f" [{r.low:+.3f}, {r.high:+.3f}]"
        table.append([
            str(r.comparison),
            scores or "-",
            "-" if r.mean_difference is None else f"{r.mean_difference:+.3f}{interval}",
            "-" if r.p_value is None else f"{r.p_value:.2g}",
            "-" if r.p_holm is None else f"{r.p_holm:.2g}",
            r.outcome + (f" ({r.reason})" if r.reason else ""),
        ])  # fmt: skip
    doc.heading("Primary comparisons")
    doc.paragraph(
        f"The comparisons this study was run to answer ({holm_family_note(results)}). Each seed "
        "trains its own models and draws its own test sample, so the seed is the unit of replication: "
        "per seed, the first target's score minus the second's (transfer accuracy under the named "
        "attack and attacker, or the worst-attacker transfer accuracy), then a two-sided paired "
        "t-test of those differences against 0, its p-value Holm-adjusted over this family alone "
        "(adding a method to the study changes none of them). 'flagged': a cell of either target "
        "leaks labels or lost a class, and no conclusion is drawn. The per-example McNemar tests "
        "further down are exploratory."
    )
    doc.table(["comparison", "scores per seed (first/second)", "difference", "p", "Holm p", "outcome"], table)


def paired_section(
    doc: Document, combined_tests: list[dict[str, Any]], config: BenchConfig, family: int
) -> None:
    attack = primary_attack(config)
    shown = [c for c in combined_tests if c["attack"] == attack]
    if not shown:
        return
    table = []
    for c in sorted(shown, key=lambda c: (c["threat_model"] != "dense", c["threat_model"], c["ratio"])):
        n = len(c["seeds"])
        table.append(
            [
                c["threat_model"],
                f"{c['ratio']:g}x",
                c["first"],
                c["second"],
                ", ".join(f"{d:+.3f}" for d in c["differences"]),
                ", ".join(f"{p:.2g}" for p in c["p_holm"]),
                f"{c['significant_wins']}/{n}",
                f"{c['significant_losses']}/{n}",
            ]
        )
    doc.heading(f"Exploratory paired tests ({attack.upper()}): GAP against every other pruning method")
    doc.paragraph(
        "Exploratory, per-seed diagnostics: the verdict reads the primary comparisons, not these. "
        "Exact McNemar test on per-example transfer correctness (the same test examples for both targets), "
        "per seed: the accuracy difference (GAP minus the other) and its two-sided p-value, Holm-adjusted "
        f"over the report's whole family of {family} paired tests (every attack, attacker, ratio and seed); "
        "wins and losses count the seeds where the difference is significant (adjusted p < 0.05)."
    )
    doc.table(
        [
            "threat model",
            "ratio",
            "GAP",
            "against",
            "difference per seed",
            "Holm p per seed",
            "wins",
            "losses",
        ],
        table,
    )
