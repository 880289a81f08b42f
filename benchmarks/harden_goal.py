"""The `harden` study against its goal (issue 15): at a clean-accuracy budget of 2 points below
the dense model, transfer accuracy >= 0.85 from the dense attacker, >= 0.70 from the
independent and ensemble attackers, >= 0.50 from the replica (PGD and MI-FGSM), every seed's
paired test against random and magnitude pruning at p < 0.01, and no worse than ART's FBF or
ensemble adversarial training of the dense model; and whether the model is in the paper's
regime (magnitude pruning at 4x costs under 1 point of clean accuracy, random under 5).

Reads finished studies of the same seeds (several folders merge: e.g. one with extra methods);
final models count: a method is within the budget in a seed when its model's clean accuracy
is. Prints a table and writes results/harden_goal.json.

Run: gap-art bench --preset harden --out runs/harden && python benchmarks/harden_goal.py runs/harden
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from common import write_results

from gap_art.evaluation.export import fixed_width_table

BUDGET = 0.02
THRESHOLDS = {"dense": 0.85, "independent": 0.70, "ensemble": 0.70, "replica": 0.50}
ATTACKS = ("pgd", "mifgsm")
BASELINES = ("random", "magnitude")
ART_REFERENCES = ("art:fbf", "art:ensemble-adv")


def method_of(target: str) -> str:
    return target.rsplit("@", 1)[0]


def load(folders: list[Path]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], float]:
    rows, tests, budgets = [], [], set()
    for folder in folders:
        results = json.loads((folder / "results.json").read_text())
        eps = results["config"]["eps"] or results["rows"][0]["eps"]
        budgets.add(eps)
        rows += [r for r in results["rows"] if not r.get("error") and r["eps"] == eps]
        tests += results["paired_tests"]
    if len(budgets) != 1:
        raise SystemExit(f"the studies use different eps {sorted(budgets)}: they cannot be merged")
    return rows, tests, budgets.pop()


def per_method(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per method: clean accuracy and transfer accuracy (attack, attacker) of each seed."""
    dense = {r["seed"]: r["clean_accuracy"] for r in rows if r["target"] == "dense"}
    methods: dict[str, dict[str, Any]] = defaultdict(lambda: {"clean": {}, "transfer": defaultdict(dict)})
    for r in rows:
        if r["family"] not in ("pruning", "art_defence"):
            continue
        entry = methods[method_of(r["target"])]
        entry["clean"][r["seed"]] = r["clean_accuracy"]
        entry["transfer"][(r["attack"], r["threat_model"])][r["seed"]] = r["transfer_accuracy"]
        entry["collapsed"] = entry.get("collapsed", False) or bool(r.get("collapsed_classes"))
    for entry in methods.values():
        entry["cost"] = {s: dense[s] - c for s, c in entry["clean"].items()}
    return dict(methods)


def worst_p(tests: list[dict[str, Any]], method: str, baseline: str) -> tuple[float | None, bool]:
    """The largest p-value over seeds of ``method`` against ``baseline`` (PGD, dense attacker),
    and whether every seed's difference favours ``method``."""
    found = [
        t
        for t in tests
        if t["attack"] == "pgd"
        and t["threat_model"] == "dense"
        and t["first"] == method
        and t["second"] == baseline
    ]
    if not found:
        return None, False
    return max(t["p_value"] for t in found), all(t["difference"] > 0 for t in found)


def assess(name: str, entry: dict[str, Any], tests: list[dict[str, Any]]) -> dict[str, Any]:
    seeds = sorted(entry["clean"])
    within = [s for s in seeds if entry["cost"][s] <= BUDGET]
    means = {
        f"{attack}/{threat}": float(np.mean(list(entry["transfer"][(attack, threat)].values())))
        for attack in ATTACKS
        for threat in THRESHOLDS
        if entry["transfer"].get((attack, threat))
    }
    shortfalls = {
        key: round(THRESHOLDS[key.split("/")[1]] - value, 3)
        for key, value in means.items()
        if value < THRESHOLDS[key.split("/")[1]]
    }
    paired = {b: worst_p(tests, name, b) for b in BASELINES}
    significant = all(p is not None and p < 0.01 and better for p, better in paired.values())
    return {
        "method": name,
        "clean_cost_points": round(100 * float(np.mean(list(entry["cost"].values()))), 1),
        "seeds_within_budget": f"{len(within)}/{len(seeds)}",
        "collapsed_class": entry["collapsed"],
        "transfer": means,
        "shortfalls": shortfalls,
        "worst_p": {b: p for b, (p, _) in paired.items()},
        "goal_met": len(within) == len(seeds) and not shortfalls and significant and not entry["collapsed"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "folders", type=Path, nargs="+", help="finished gap-art bench folders (harden preset)"
    )
    args = parser.parse_args()
    rows, tests, eps = load(args.folders)
    methods = per_method(rows)
    verdicts = [assess(name, entry, tests) for name, entry in methods.items()]
    regime = {b: methods[b]["cost"] for b in BASELINES if b in methods}
    table = []
    for v in verdicts:
        t = v["transfer"]
        p = v["worst_p"]
        collapsed = "yes" if v["collapsed_class"] else "no"
        table.append([
            v["method"], f"{v['clean_cost_points']:+.1f}", v["seeds_within_budget"], collapsed,
            *(f"{t.get(f'pgd/{threat}', float('nan')):.3f}" for threat in THRESHOLDS),
            *(f"{t.get(f'mifgsm/{threat}', float('nan')):.3f}" for threat in THRESHOLDS),
            *("-" if p[b] is None else f"{p[b]:.1g}" for b in BASELINES),
            "yes" if v["goal_met"] else "no",
        ])  # fmt: skip
    header = ["method", "clean cost (pts)", "within 2 pts", "collapsed", "PGD dense", "indep", "ensemble"]
    header += ["replica", "MI dense", "indep", "ensemble", "replica", "p vs random", "p vs magnitude", "goal"]
    print(f"eps {eps:g}; goal thresholds {THRESHOLDS} within {100 * BUDGET:g} points of the dense model\n")
    print(fixed_width_table(header, table))
    costs = {b: round(100 * float(np.mean(list(c.values()))), 1) for b, c in regime.items()}
    print(f"\nregime (clean cost at 4x, points; magnitude < 1 and random < 5 wanted): {costs}")
    write_results(
        "harden_goal",
        {
            "studies": [str(f) for f in args.folders],
            "eps": eps,
            "regime_cost_points": costs,
            "methods": verdicts,
        },
    )


if __name__ == "__main__":
    main()
