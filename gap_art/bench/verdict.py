"""The verdict on top of the report: which method to use within each clean-accuracy budget
and how sure that is, GAP against random and magnitude pruning with paired tests, the white-box
caveat, what the threat models showed, and whether any number is suspect."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from gap_art.attacks import is_linf
from gap_art.bench.attack_roles import primary_attack, whitebox_only
from gap_art.bench.config import BenchConfig
from gap_art.bench.flags import masked_targets, weak_source_classes
from gap_art.bench.primary import BETTER, WORSE, PrimaryResult, holm_family_note
from gap_art.bench.rows import Row
from gap_art.bench.summary import HEADLINE, Analysis, Key
from gap_art.evaluation.sanity import SanityCheck


def _interval(entry: dict[str, Any], seeds: int) -> str:
    if seeds < 2:
        return ""
    return f" [{entry['low']:.2f}, {entry['high']:.2f}]"


def dense_validation_accuracy(rows: Sequence[Row], config: BenchConfig) -> str:
    """The dense model's clean accuracy on the validation rows, the level budgets count from."""
    attack = primary_attack(config)
    dense = [
        accuracy
        for r in rows
        if r["target"] == "dense" and r["attack"] == attack
        and (accuracy := r.get("validation_clean_accuracy")) is not None
    ]  # fmt: skip
    return f"{np.mean(dense):.3f}" if dense else "?"


def budget_bullet(rows: Sequence[Row], entries: list[dict[str, Any]], config: BenchConfig) -> str | None:
    """Per budget, the best method (and the best compressed one when ART's defence wins), its
    models selected on the validation rows and scored on the test examples, in one line."""
    if not entries:
        return None
    parts = []
    for budget in sorted({e["budget"] for e in entries}):
        ranked = sorted(
            (e for e in entries if e["budget"] == budget and e["mean"] is not None), key=lambda e: -e["mean"]
        )
        head = f"{budget * 100:g} pt"
        if not ranked:
            parts.append(f"{head}: no method has a model in every seed")
            continue
        best, seeds = ranked[0], len(config.seeds)
        text = f"{head}: {best['method']} keeps {best['mean']:.3f}{_interval(best, seeds)}"
        compressed = next((e for e in ranked if not e["method"].startswith("art:")), None)
        if best["method"].startswith("art:") and compressed is not None:
            text += f" (best compressed: {compressed['method']} {compressed['mean']:.3f})"
        elif len(ranked) > 1:
            text += f" (next: {ranked[1]['method']} {ranked[1]['mean']:.3f})"
        parts.append(text)
    return (
        f"Within a clean-accuracy budget of the dense model's validation accuracy "
        f"({dense_validation_accuracy(rows, config)}), {_scored(entries[0], rows, config)}, models chosen on "
        "validation rows and scored on test" + ("" if len(config.seeds) < 2 else ", t intervals over seeds")
        + "): " + "; ".join(parts) + "."
    )  # fmt: skip


def whitebox_only_run(rows: Sequence[Row], config: BenchConfig) -> list[str]:
    """The white-box-only attacks the study has rows of: a study made before such an attack
    ran (gap-art 0.2.0) may name one in its config that ran nothing."""
    ran = {row["attack"] for row in rows}
    return [attack for attack in whitebox_only(config) if attack in ran]


def attacker_grid(rows: Sequence[Row], config: BenchConfig) -> str:
    """What a worst-attacker figure is the lowest of: every attacker and L-inf attack, and each
    white-box-only attack from the dense model (an L2 attack such as CW is not in it)."""
    linf = [attack for attack in config.attacks if is_linf(attack)]
    grid = f"{len(config.threat_models)} attacker(s) x {len(linf)} L-inf attack(s)"
    extra = [a.upper() for a in whitebox_only_run(rows, config)]
    return grid + (f", and {', '.join(extra)} from the dense model" if extra else "")


def _scored(entry: dict[str, Any], rows: Sequence[Row], config: BenchConfig) -> str:
    """What a budget entry's score is, its parenthesis left open."""
    if entry["score"] != HEADLINE:
        return f"test transfer accuracy ({primary_attack(config).upper()} from the dense model"
    return f"worst-attacker test transfer accuracy (lowest of {attacker_grid(rows, config)}"


def primary_bullet(results: Sequence[PrimaryResult]) -> str | None:
    """The pre-registered comparisons: the only "A beats B" a verdict states. Significant
    outcomes in full, the others counted by outcome."""
    if not results:
        return None
    if all(r.p_value is None for r in results):
        seeds = max((len(r.seeds) for r in results), default=0)
        return (
            f"Primary comparisons: none of the {len(results)} named could be tested: each needs scores "
            f"in 2 or more seeds (at most {seeds} here), the seed being the unit of replication; run "
            "more --seeds (table: Primary comparisons)."
        )
    decided = [r.said() for r in results if r.outcome in (BETTER, WORSE)]
    rest = Counter(r.outcome for r in results if r.outcome not in (BETTER, WORSE))
    others = ", ".join(f"{n} {outcome}" for outcome, n in rest.items())
    text = f"Primary comparisons ({holm_family_note(results)}): "
    text += "; ".join(decided) if decided else "none significant"
    return text + (f"; the other(s): {others} (table: Primary comparisons)." if rest else ".")


def _mean_by_threat(summary: dict[Key, dict[str, Any]], attack: str, eps: float) -> dict[str, float]:
    values: dict[str, list[float]] = {}
    for (a, _, threat, e), entry in summary.items():
        gap = entry["family"] == "pruning" and entry["adversarial"] and "+" not in entry["method"]
        if a == attack and e == eps and gap and entry["transfer_accuracy"] is not None:
            values.setdefault(threat, []).append(entry["transfer_accuracy"][0])
    return {threat: float(np.mean(v)) for threat, v in values.items()}


def _hardened_replica_lines(summary: dict[Key, dict[str, Any]], attack: str, eps: float) -> list[str]:
    """Hardened targets (``+tat``, ``+gal``) against the attacker who reruns their method on M."""
    pairs = [
        (target, entry["transfer_accuracy"][0], summary.get((attack, target, "dense", eps), {}))
        for (a, target, threat, e), entry in summary.items()
        if a == attack and e == eps and threat == "replica" and "+" in entry["method"]
        and entry["family"] == "pruning" and entry["transfer_accuracy"] is not None
    ]  # fmt: skip
    if not pairs:
        return []
    parts = [
        f"{target} {replica:.3f} (from the dense model {dense['transfer_accuracy'][0]:.3f})"
        for target, replica, dense in pairs
        if dense.get("transfer_accuracy")
    ]
    return [
        f"Hardened targets against the replica attacker ({attack.upper()}, the method rerun "
        "on M with the attacker's seed): " + "; ".join(parts) + "."
    ]


def _attacker_words(worst: str) -> str:
    """``dense pgd`` (a row's ``worst_attacker``) as a reader says it: ``PGD from dense``."""
    threat, _, attack = worst.rpartition(" ")
    return f"{attack.upper()} from {threat}" if threat else worst


def _claim(rows: Sequence[Row], entry: dict[str, Any], seeds: int) -> str:
    """One budget winner in the field's words: the model validation chose, its worst-attacker
    transfer accuracy (t interval over seeds), its test clean accuracy and what that costs
    against the dense model, its most frequent worst attacker, and † where a failed sanity check
    covers one of its cells."""
    chosen = [(seed, t) for seed, t in zip(entry["seeds"], entry["targets"], strict=True) if t]
    targets = sorted({t for _, t in chosen})
    name = targets[0] if len(targets) == 1 else f"{entry['method']} ({', '.join(targets)} across seeds)"
    mine = [r for r in rows if (r["seed"], r["target"]) in set(chosen) and not r.get("error")]
    marked = "†" if any(r.get("trustworthy") is False for r in mine) else ""
    interval = _interval(entry, seeds)
    text = f"{name}{marked}: worst-attacker transfer accuracy {entry['mean']:.3f}{interval}"
    clean = [c for c in entry.get("clean") or [] if c is not None]
    dense = [c for r in rows if r["target"] == "dense" and (c := r.get("clean_accuracy")) is not None]
    if clean and dense:
        ours, theirs = float(np.mean(clean)), float(np.mean(dense))
        text += (
            f", test clean accuracy {ours:.3f} ({100 * (theirs - ours):.1f} points below dense {theirs:.3f})"
        )
    worst = Counter(str(r["worst_attacker"]) for r in mine if r.get("worst_attacker"))
    if worst:
        most = max(worst.values())
        text += ", worst attacker " + " or ".join(
            sorted(_attacker_words(w) for w, n in worst.items() if n == most)
        )
    return text


def bottom_line(rows: Sequence[Row], analysis: Analysis, config: BenchConfig) -> str:
    """The answer in one short line per claim: within the widest clean-accuracy budget (chosen
    on validation) and judged by the worst attacker, the best model, and the best compressed
    one when ART's uncompressed defence wins; each with its interval, test clean cost and marks."""
    scored = [e for e in analysis.budgets if e["mean"] is not None]
    if not scored:
        return "Bottom line: no method has a model within any clean-accuracy budget in every seed."
    widest = max(e["budget"] for e in scored)
    ranked = sorted((e for e in scored if e["budget"] == widest), key=lambda e: -e["mean"])
    seeds = len(config.seeds)
    text = (
        f"Bottom line (at most {widest * 100:g} points of validation clean accuracy given up; the worst of "
        f"{attacker_grid(rows, config)}; {seeds} seed(s)): {_claim(rows, ranked[0], seeds)}"
    )
    compressed = next((e for e in ranked if not e["method"].startswith("art:")), None)
    if ranked[0]["method"].startswith("art:") and compressed is not None:
        text += f". Best compressed: {_claim(rows, compressed, seeds)}"
    return text + "."


def _attacker_bullet(summary: dict[Key, dict[str, Any]], config: BenchConfig, attack: str, eps: float) -> str:
    """Which attackers ran, from the configuration (not from which targets exist), and what the
    compressed targets kept under each."""
    if config.threat_models == ["dense"]:
        return (
            "Only the paper's attacker (the dense model) was run: --threat-models all adds attackers who "
            "know the defence."
        )
    by_threat = _mean_by_threat(summary, attack, eps)
    text = f"Attackers run: {', '.join(config.threat_models)}."
    if by_threat:
        text += (
            " Mean transfer accuracy of the GAP targets by attacker: "
            + ", ".join(f"{t} {v:.3f}" for t, v in by_threat.items())
            + "."
        )
    return " ".join([text, *_hardened_replica_lines(summary, attack, eps)])


def flag_bullet(rows: Sequence[Row], summary: dict[Key, dict[str, Any]]) -> str:
    """Every flagged target in one line: collapsed classes, label leaking, gradient masking."""
    collapsed = sorted({t for (_, t, _, _), e in summary.items() if e["collapsed_classes"]})
    leaking: dict[str, list[str]] = {}
    for (a, target, threat, _), entry in summary.items():
        if entry.get("transfer_exceeds_clean"):
            leaking.setdefault(target, []).append(f"{threat} {a}")
    masked = sorted(masked_targets(rows))
    parts = []
    weak = weak_source_classes(rows)
    if weak:
        listed = "; ".join(f"class {k} in seed(s) {', '.join(map(str, seeds))}" for k, seeds in weak.items())
        parts.append(f"a class the dense source itself has lost (every target inherits it): {listed}")
    if collapsed:
        parts.append(f"a collapsed class (left out of every 'best'): {', '.join(collapsed)}")
    if leaking:
        listed = "; ".join(f"{t} ({', '.join(sorted(set(cells)))})" for t, cells in sorted(leaking.items()))
        parts.append(
            "transfer accuracy above clean accuracy (‡, the label-leaking signature of training on the "
            f"attacker's examples), never counted as robustness (no best, budget or win): {listed}; judge "
            "them by the attackers and attacks they did not train on"
        )
    if masked:
        parts.append(
            f"gradient masking suspected (white-box PGD beats the best transfer, †): {', '.join(masked)}"
        )
    if not parts:
        return "No target is flagged: no collapsed class, no label leaking, no gradient masking."
    return "Flagged targets, with " + "; and with ".join(parts) + "."


def verdict(
    rows: Sequence[Row], analysis: Analysis, config: BenchConfig, checks_by_seed: dict[int, list[SanityCheck]]
) -> list[str]:
    """The report's verdict, at most six lines: budgets, paired tests, the white-box caveat,
    the attackers, the flags and the sanity checks."""
    attack, eps, summary = primary_attack(config), config.attack_eps, analysis.summary
    lines = [
        line
        for line in (
            budget_bullet(rows, analysis.budgets, config),
            primary_bullet(analysis.primary),
        )
        if line is not None
    ]
    gap_whitebox = [
        e["whitebox_accuracy"][0]
        for (a, t, th, ep), e in summary.items()
        if a == attack and th == "dense" and ep == eps and e["adversarial"] and e["family"] == "pruning"
        and e["whitebox_accuracy"]
    ]  # fmt: skip
    if gap_whitebox:
        lines.append(
            f"White-box {attack.upper()} on the GAP models themselves leaves at most {max(gap_whitebox):.3f} "
            "accuracy: GAP hardens against transfer from the dense model, not against attacks in general."
        )
    lines.append(_attacker_bullet(summary, config, attack, eps))
    lines.append(flag_bullet(rows, summary))
    failed = [c for checks in checks_by_seed.values() for c in checks if not c.passed]
    if failed:
        lines.append(
            f"{len(failed)} sanity check(s) failed: "
            + "; ".join(sorted({c.name for c in failed}))
            + ". The numbers they cover are marked †."
        )
    return lines


def conclusions(rows: Sequence[Row], analysis: Analysis) -> dict[str, str]:
    """The verdict's claims without their numbers: the best method within each budget (by the
    worst attacker), each primary comparison's outcome, and each target's flags. Two studies
    that differ here disagree on a conclusion, not only on a figure."""
    claims: dict[str, str] = {}
    for budget in sorted({e["budget"] for e in analysis.budgets}):
        ranked = [e for e in analysis.budgets if e["budget"] == budget and e["mean"] is not None]
        best = max(ranked, key=lambda e: e["mean"], default=None)
        claims[f"best within {budget * 100:g} points (worst attacker)"] = best["method"] if best else "none"
    for result in analysis.primary:
        claims[str(result.comparison)] = result.outcome
    masked = masked_targets(rows)
    for target in dict.fromkeys(t for (_, t, _, _) in analysis.summary):
        entries = [e for (_, t, _, _), e in analysis.summary.items() if t == target]
        flags = [
            name
            for name, raised in (
                ("collapsed class", any(e["collapsed_classes"] for e in entries)),
                ("label leaking", any(e.get("transfer_exceeds_clean") for e in entries)),
                ("gradient masking", target in masked),
            )
            if raised
        ]
        claims[f"{target} flagged"] = ", ".join(flags) or "none"
    return claims
