"""Statistics over a study's rows: the summary per (attack, target, threat model, eps) that
reports and plots read, and the cross-cell analysis (worst case per example, sanity flags,
methods compared at matched clean accuracy)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from gap_art.bench.rows import Row, unpack_correct
from gap_art.evaluation.metrics import Z_95
from gap_art.evaluation.sanity import SanityCheck, untrusted_attacks

Cell = tuple[float, float, float] | None
METRICS = (
    "clean_accuracy",
    "transfer_accuracy",
    "whitebox_accuracy",
    "worst_case_transfer_accuracy",
    "transfer_success_rate",
    "matched_transfer_accuracy",
)

Key = tuple[str, str, str, float]
"""(attack, target, threat model, eps)"""


def summarize(rows: Sequence[Row]) -> dict[Key, dict[str, Any]]:
    """Per (attack, target, threat model, eps): each metric's mean over seeds and 95% interval.

    One seed: the Wilson interval over examples. Several seeds: mean +- 1.96 standard
    errors across seeds (the seed-to-seed spread, which includes the example noise).
    """
    groups: dict[Key, list[Row]] = defaultdict(list)
    for row in rows:
        if not row.get("error"):
            groups[(row["attack"], row["target"], row["threat_model"], row["eps"])].append(row)
    summary = {}
    for key, members in groups.items():
        entry: dict[str, Any] = {
            "family": members[0]["family"],
            "method": members[0]["method"],
            "requested_compression": members[0]["requested_compression"],
            "compression": float(np.mean([m["compression"] or 1.0 for m in members])),
            "size_bytes": float(np.mean([m["size_bytes"] or 0 for m in members])),
            "seeds": len(members),
            "trustworthy": all(m.get("trustworthy") is not False for m in members),
            "notes": sorted({m["matched_note"] for m in members if m.get("matched_note")}),
        }
        for metric in METRICS:
            values = [m[metric] for m in members if m.get(metric) is not None]
            entry[metric] = _mean_interval(values, members, metric)
        summary[key] = entry
    return summary


def _mean_interval(values: list[float], members: list[Row], metric: str) -> Cell:
    if not values:
        return None
    mean = float(np.mean(values))
    if len(values) == 1:
        low = members[0].get(f"{metric}_ci_low")
        high = members[0].get(f"{metric}_ci_high")
        return (mean, low if low is not None else mean, high if high is not None else mean)
    half = Z_95 * float(np.std(values, ddof=1)) / math.sqrt(len(values))
    return (mean, max(0.0, mean - half), min(1.0, mean + half))


def add_worst_case(rows: Sequence[Row], eps: float) -> None:
    """``worst_case_transfer_accuracy``: the fraction of examples that a target classifies
    correctly under every attack and every threat model (at the nominal eps), per seed."""
    groups: dict[tuple[int, str], list[Row]] = defaultdict(list)
    for row in rows:
        if not row.get("error") and row.get("transfer_correct") and row["eps"] == eps:
            groups[(row["seed"], row["target"])].append(row)
    for members in groups.values():
        worst = np.logical_and.reduce([unpack_correct(m) for m in members])
        for member in members:
            member["worst_case_transfer_accuracy"] = float(worst.mean())


def add_sanity_flags(rows: Sequence[Row], checks_by_seed: dict[int, list[SanityCheck]]) -> None:
    """``trustworthy`` is False, and ``sanity_failures`` names why, where a failed sanity
    check on that seed's source covers the row's attack. Numbers are kept, not hidden."""
    for row in rows:
        checks = checks_by_seed.get(row["seed"])
        if checks is None:
            continue
        failures = untrusted_attacks(checks).get(row["attack"], [])
        row["trustworthy"] = not failures
        row["sanity_failures"] = failures


def _interpolate(curve: list[list[float]], level: float) -> tuple[float, float, str]:
    """Transfer accuracy where the fine-tuning curve first reaches clean accuracy ``level``.

    :return: ``(epoch, transfer accuracy, note)``; when the curve never comes down to
        ``level``, its least accurate point and a note that says so.
    """
    points = sorted(curve)
    for (e0, c0, t0), (e1, c1, t1) in zip(points, points[1:], strict=False):
        if min(c0, c1) <= level <= max(c0, c1):
            share = 0.0 if c1 == c0 else (level - c0) / (c1 - c0)
            return e0 + share * (e1 - e0), t0 + share * (t1 - t0), "interpolated on the fine-tuning curve"
    if len(points) == 1 or level >= max(p[1] for p in points):
        epoch, _, transfer = max(points, key=lambda p: p[1])
        return epoch, transfer, "curve never as accurate; its most accurate point"
    epoch, _, transfer = min(points, key=lambda p: p[1])
    return epoch, transfer, "curve never as low; its least accurate point"


def add_matched_accuracy(rows: Sequence[Row], attack: str, eps: float) -> None:
    """Compare pruning methods at equal clean accuracy, not only at equal sparsity.

    For each seed and ratio, the matched level is the final clean accuracy of the weakest
    method; every method's transfer accuracy is read off its fine-tuning curve at that level
    (``matched_transfer_accuracy``), and ``matched_note`` says how it was obtained.
    """
    groups: dict[tuple[int, float], list[Row]] = defaultdict(list)
    for row in rows:
        if (
            row["family"] == "pruning"
            and row["attack"] == attack
            and row["threat_model"] == "dense"
            and row["eps"] == eps
            and row.get("finetune_curve")
            and not row.get("error")
        ):
            groups[(row["seed"], row["requested_compression"])].append(row)
    for members in groups.values():
        level = min(m["clean_accuracy"] for m in members)
        for member in members:
            epoch, transfer, note = _interpolate(member["finetune_curve"], level)
            member.update(
                matched_clean_accuracy=level,
                matched_transfer_accuracy=transfer,
                matched_epoch=epoch,
                matched_note=note,
            )
