"""Two finished studies side by side: the cells they share, with deltas, exact McNemar tests
where both evaluated the same examples (same split, size and selection seed), and the verdict
lines whose conclusion flips between them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gap_art.bench.report import read_study
from gap_art.bench.rows import Row, unpack_correct
from gap_art.bench.verdict import conclusions
from gap_art.evaluation.export import fixed_width_table
from gap_art.evaluation.metrics import mcnemar_exact

CellKey = tuple[int, str, str, str, float]
"""(seed, target, attack, threat model, eps)"""


def _load(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / "results.json"
    if not path.is_file():
        raise FileNotFoundError(f"{folder} holds no results.json: is it a finished gap-art bench folder?")
    return json.loads(path.read_text())


def _cells(rows: list[Row]) -> dict[CellKey, Row]:
    return {
        (r["seed"], r["target"], r["attack"], r["threat_model"], r["eps"]): r
        for r in rows
        if not r.get("error")
    }


def _delta(first: float | None, second: float | None) -> float | None:
    """Second minus first, where both exist."""
    return None if first is None or second is None else second - first


def compare(first: str | Path, second: str | Path) -> list[dict[str, Any]]:
    """The cells both studies have, in the first study's order: each one's clean and transfer
    accuracy, the differences (second minus first) and, where the examples match, the exact
    McNemar p-value of the transfer difference.

    :raises FileNotFoundError: A folder holds no results.json.
    """
    a, b = _load(first), _load(second)
    same_examples = a.get("evaluation_set") == b.get("evaluation_set")
    ours, theirs = _cells(a["rows"]), _cells(b["rows"])
    compared = []
    for key, row in ours.items():
        other = theirs.get(key)
        if other is None:
            continue
        entry = {
            "seed": key[0],
            "target": key[1],
            "attack": key[2],
            "threat_model": key[3],
            "eps": key[4],
            "clean": (row["clean_accuracy"], other["clean_accuracy"]),
            "transfer": (row["transfer_accuracy"], other["transfer_accuracy"]),
            "clean_delta": _delta(row.get("clean_accuracy"), other.get("clean_accuracy")),
            "transfer_delta": _delta(row.get("transfer_accuracy"), other.get("transfer_accuracy")),
            "p_value": None,
        }
        paired = same_examples and row.get("transfer_correct") and other.get("transfer_correct")
        if paired and row["n"] == other["n"]:
            entry["p_value"] = mcnemar_exact(unpack_correct(other), unpack_correct(row)).p_value
        compared.append(entry)
    return compared


@dataclass(frozen=True)
class VerdictComparison:
    """How two studies' verdicts compare.

    :param flips: The claims both make but state differently, as ``(claim, in A, in B)``.
    :param paired_tests: How many primary comparisons (method against method, tested across
        seeds) both studies test: with none, no paired conclusion could have flipped.
    """

    flips: tuple[tuple[str, str, str], ...]
    paired_tests: int


def flipped_conclusions(first: str | Path, second: str | Path) -> VerdictComparison:
    """The verdict claims (:func:`~gap_art.bench.verdict.conclusions`) both studies make but
    state differently (a claim only one study makes, about a method only it ran, is no flip),
    and how many primary comparisons they share."""
    studies = [read_study(folder) for folder in (first, second)]
    claims = [conclusions(s.rows, s.analysis) for s in studies]
    paired = [{str(r.comparison) for r in s.analysis.primary if r.p_value is not None} for s in studies]
    flips = tuple(
        (key, claim, claims[1][key]) for key, claim in claims[0].items() if claims[1].get(key, claim) != claim
    )
    return VerdictComparison(flips, len(paired[0] & paired[1]))


def format_flips(comparison: VerdictComparison) -> str:
    """The flipped verdict lines, A then B under each claim; says so when the studies share no
    paired test (then "nothing flipped" would say nothing)."""
    lines = []
    if comparison.paired_tests == 0:
        lines.append(
            "No paired tests to compare: the studies share no primary comparison (same targets, "
            "attack and attacker), so no paired conclusion can flip."
        )
    if not comparison.flips:
        unpaired = (
            "its bests within each budget and its flags"
            if comparison.paired_tests == 0
            else "every shared conclusion"
        )
        return "\n".join([*lines, f"No verdict line flips: {unpaired} of A hold in B."])
    lines.append(f"{len(comparison.flips)} verdict line(s) flip:")
    for claim, a, b in comparison.flips:
        lines += [f"  {claim}", f"    A: {a}", f"    B: {b}"]
    return "\n".join(lines)


def format_comparison(entries: list[dict[str, Any]], attack: str | None = None) -> str:
    """A terminal table of :func:`compare`'s entries (one attack, or all)."""
    shown = [e for e in entries if attack is None or e["attack"] == attack]
    header = (
        "seed",
        "target",
        "attack",
        "attacker",
        "clean A",
        "clean B",
        "transfer A",
        "transfer B",
        "delta",
        "p",
    )
    rows = [
        (
            e["seed"],
            e["target"],
            e["attack"],
            e["threat_model"],
            f"{e['clean'][0]:.3f}",
            f"{e['clean'][1]:.3f}",
            f"{e['transfer'][0]:.3f}",
            f"{e['transfer'][1]:.3f}",
            f"{e['transfer_delta']:+.3f}",
            "-" if e["p_value"] is None else f"{e['p_value']:.2g}",
        )
        for e in shown
    ]
    return fixed_width_table(header, rows)
