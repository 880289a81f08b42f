"""The tables of the report, each a small function that adds one section to a
:class:`~gap_art.bench.document.Document`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gap_art.attacks import ATTACKS
from gap_art.bench.attack_roles import attack_label, primary_attack
from gap_art.bench.config import BenchConfig
from gap_art.bench.document import Document, Strong
from gap_art.bench.rows import Row
from gap_art.bench.summary import HEADLINE, Cell, Key
from gap_art.bench.threats import threat_model
from gap_art.evaluation.sanity import SanityCheck

Summary = dict[Key, dict[str, Any]]


def fmt(cell: Cell, interval: bool = True) -> str:
    """``mean [low, high]``, or the mean alone when there is no interval; ``-`` for none."""
    if cell is None:
        return "-"
    if interval and (cell[1], cell[2]) != (cell[0], cell[0]):
        return f"{cell[0]:.3f} [{cell[1]:.2f}, {cell[2]:.2f}]"
    return f"{cell[0]:.3f}"


def _entry(summary: Summary, attack: str, target: str, threat: str, eps: float) -> dict[str, Any]:
    return summary.get((attack, target, threat, eps), {})


def _mark(entry: dict[str, Any]) -> str:
    mark = "" if entry.get("trustworthy", True) else " †"
    if entry.get("transfer_exceeds_clean"):
        mark += " ‡"
    if entry.get("collapsed_classes"):
        mark += f" (collapsed classes: {', '.join(map(str, entry['collapsed_classes']))})"
    return mark


def _sound(entry: dict[str, Any]) -> bool:
    """Neither a collapsed class nor label leaking: a target that may be called best."""
    return not entry.get("collapsed_classes") and not entry.get("transfer_exceeds_clean")


def _bold_best(rows: list[list[str]], cells: list[list[Cell]], sound: list[bool], lowest: set[int]) -> None:
    """Make the best value of each column bold, among the rows of sound targets (:func:`_sound`)."""
    for column in range(len(cells[0]) if cells else 0):
        means = [None if c[column] is None else c[column][0] for c in cells]  # type: ignore[index]
        values = [m for m, ok in zip(means, sound, strict=True) if ok and m is not None]
        if not values:
            continue
        best = min(values) if column in lowest else max(values)
        for row, mean, ok in zip(rows, means, sound, strict=True):
            if ok and mean == best:
                row[column + 2] = Strong(row[column + 2])


def pruning_section(doc: Document, summary: Summary, config: BenchConfig, attack: str) -> None:
    """The dense model and every pruned target under one attack; int8 as a delta column."""
    eps = config.attack_eps
    names = list(
        dict.fromkeys(
            t
            for (a, t, th, e), v in summary.items()
            if a == attack and th == "dense" and e == eps and v["family"] in ("baseline", "pruning")
        )
    )
    metrics = [
        ("clean", "clean_accuracy"),
        ("transfer", "transfer_accuracy"),
        ("white-box", "whitebox_accuracy"),
        ("worst case", "worst_case_transfer_accuracy"),
        ("transfer success", "transfer_success_rate"),
    ]
    if any(_entry(summary, attack, name, "dense", eps).get("autoattack_accuracy") for name in names):
        metrics.append(("AutoAttack (subsample, white-box)", "autoattack_accuracy"))
    header = ["target", "compression", *[m[0] for m in metrics], "int8: transfer delta", "size (KiB)"]
    rows, cells, sound = [], [], []
    for name in names:
        entry = _entry(summary, attack, name, "dense", eps)
        values = [entry.get(metric) for _, metric in metrics]
        int8 = _entry(summary, attack, f"{name}+int8", "dense", eps).get("transfer_accuracy")
        delta = "-" if int8 is None or values[1] is None else f"{int8[0] - values[1][0]:+.3f}"
        rows.append(
            [
                name + _mark(entry),
                f"{entry['compression']:.2f}",
                *map(fmt, values),
                delta,
                f"{entry['size_bytes'] / 1024:.1f}",
            ]
        )
        cells.append(values)
        sound.append(_sound(entry))
    _bold_best(rows, cells, sound, lowest={4})
    doc.heading(f"Pruning methods under {attack_label(attack, config)} (from the dense model)")
    doc.table(header, rows)

    if any("‡" in row[0] for row in rows):
        doc.paragraph(
            "‡ transfer accuracy above clean accuracy: the label-leaking signature of a model trained on "
            "this attacker's examples (+tat). Read its rows under the other attackers and attacks."
        )


def unbounded_section(doc: Document, rows: Sequence[Row], config: BenchConfig, attack: str) -> None:
    """What the examples of an attack the L-inf budget does not bound are (CW, an L2 attack),
    with their sizes."""
    crafted = [r for r in rows if r["attack"] == attack and r.get("l2_median") is not None]
    if not crafted:
        return
    recipe, name = ATTACKS.get(attack), attack.upper()
    margin = f" run at confidence margin {config.cw_kappa:g}" if recipe.margin is not None else ""
    l2 = float(np.median([r["l2_median"] for r in crafted]))
    linf = float(np.median([r["linf_median"] for r in crafted]))
    doc.paragraph(
        f"{name} is an {recipe.norm.upper()} attack{margin}: the L-inf budget "
        f"{config.attack_eps:g} does not bound it. Its examples' median size: L2 {l2:.3f}, L-inf {linf:.3f} "
        f"(median over the study's {name} cells of each cell's median)."
    )


def art_defence_section(doc: Document, summary: Summary, config: BenchConfig) -> None:
    """ART's built-in defences (no compression), every attack side by side."""
    eps = config.attack_eps
    names = list(dict.fromkeys(t for (_, t, th, e), v in summary.items() if v["family"] == "art_defence"))
    if not names:
        return
    primary = primary_attack(config)
    header = [
        "defence",
        "clean",
        *[f"transfer ({attack_label(a, config)})" for a in config.attacks],
        f"white-box ({primary.upper()})",
    ]
    rows = []
    for name in names:
        entries = [_entry(summary, a, name, "dense", eps) for a in config.attacks]
        first = _entry(summary, primary, name, "dense", eps)
        rows.append(
            [
                name + _mark(first),
                fmt(first.get("clean_accuracy")),
                *[fmt(e.get("transfer_accuracy")) for e in entries],
                fmt(first.get("whitebox_accuracy")),
            ]
        )
    doc.heading("ART's defences (uncompressed, for comparison)")
    doc.table(header, rows)


def threat_section(doc: Document, summary: Summary, config: BenchConfig) -> None:
    """Transfer accuracy of every target under every attacker (primary attack)."""
    threats = list(config.threat_models)
    if threats == ["dense"]:
        return
    attack, eps = primary_attack(config), config.attack_eps
    names = list(dict.fromkeys(t for (a, t, th, e) in summary if a == attack and th != "dense" and e == eps))
    rows = []
    for name in names:
        own = _entry(summary, attack, name, "dense", eps)
        by_threat = [fmt(_entry(summary, attack, name, th, eps).get("transfer_accuracy")) for th in threats]
        rows.append([name, fmt(own.get("clean_accuracy")), *by_threat, fmt(own.get(HEADLINE))])
    rows.append(
        ["(on the attacker's own model)", "", *[_own_success(summary, attack, th, eps) for th in threats], ""]
    )
    doc.heading(f"Who attacks: transfer accuracy under {attack.upper()} by attacker")
    described = "; ".join(f"{th}: {threat_model(th).description}" for th in threats)
    doc.paragraph(
        f"{described}. For ART's trained defences a replica reruns ART's training on M; the dense model "
        "and ART's preprocessors have no replica. Worst attacker: the lowest transfer accuracy over every "
        "attacker and attack, per seed, then the mean (the headline). The last row is each attacker's "
        "examples scored on the model(s) they were crafted on (white-box accuracy, mean over the targets): "
        "an attacker whose examples do not fool its own model transfers from a weak attack."
    )
    doc.table(["target", "clean", *threats, "worst attacker"], rows)


def _own_success(summary: Summary, attack: str, threat: str, eps: float) -> str:
    """The mean over targets of an attacker's white-box accuracy on its own model(s)."""
    found = [
        e["source_whitebox_accuracy"][0]
        for (a, _, th, e_eps), e in summary.items()
        if (a, th, e_eps) == (attack, threat, eps) and e.get("source_whitebox_accuracy") is not None
    ]
    return f"{np.mean(found):.3f}" if found else "-"


def secret_section(doc: Document, summary: Summary, config: BenchConfig) -> None:
    """What the defender's secret (seed: mask ties or random mask, calibration subset,
    fine-tuning order) is worth: the replica attacker holds everything else, a white-box
    attacker holds the target itself."""
    if "replica" not in config.threat_models or primary_attack(config) not in config.whitebox_attacks:
        return
    attack, eps = primary_attack(config), config.attack_eps
    rows = []
    for (a, name, threat, e), replica in summary.items():
        dense = _entry(summary, attack, name, "dense", eps)
        if a != attack or threat != "replica" or e != eps or not dense.get("whitebox_accuracy"):
            continue
        whitebox, transfer = dense["whitebox_accuracy"], replica["transfer_accuracy"]
        worth = "-" if transfer is None else f"{transfer[0] - whitebox[0]:+.3f}"
        rows.append(
            [name + _mark(replica), fmt(dense.get("transfer_accuracy")), fmt(transfer), fmt(whitebox), worth]
        )
    if not rows:
        return
    doc.heading(f"What the secret buys: {attack.upper()} from the replica against white-box")
    doc.paragraph(
        "The replica attacker reruns the target's method on our dense model with their own seed; only the "
        "defender's seed (random mask or tie-breaking, calibration subset, fine-tuning order and random "
        "starts) separates their model from ours. White-box: the attack run on the target itself. The last "
        "column is what the secret is worth in accuracy; near zero, the defence is as good as public."
    )
    doc.table(["target", "from dense", "from replica", "white-box", "secret's worth"], rows)


PICKED = "; and the epochs picked from each training curve, each within its cost"
"""What the budgets choose among beside the kept models in a study with ``curve_budgets``."""


def budget_section(doc: Document, entries: list[dict[str, Any]], config: BenchConfig) -> None:
    attack = primary_attack(config)
    if not entries:
        return
    budgets = sorted({e["budget"] for e in entries})
    table = []
    for method in dict.fromkeys(e["method"] for e in entries):
        cells: list[str] = [method]
        for budget in budgets:
            e = next(x for x in entries if x["method"] == method and x["budget"] == budget)
            if e["mean"] is None:
                found = sum(v is not None for v in e["values"])
                cells.append("none" + (f" ({found} of {len(e['values'])} seeds)" if found else ""))
            else:
                text = fmt((e["mean"], e["low"], e["high"]))
                cells.append(Strong(text) if e.get("best") else text)
        table.append(cells)
    worst = entries[0]["score"] == HEADLINE
    scored = "worst-attacker transfer accuracy" if worst else f"{attack.upper()} from the dense model"
    doc.heading(f"Within a clean-accuracy budget: {scored}")
    doc.paragraph(
        "Selected on validation, scored on test: among each method's kept models (one per ratio; ART's "
        f"defences: the defended model{PICKED * config.training_curves * bool(config.curve_budgets)}), "
        "those whose clean accuracy on the validation rows (held out of the "
        f"training data) is at most the budget below the dense model's are eligible, and the one with the "
        f"highest validation transfer accuracy ({attack.upper()} from the dense model) is picked; a cell is "
        f"its {scored if worst else 'transfer accuracy'} on the test examples (mean over seeds, Student t "
        "interval). Nothing is interpolated and the test examples "
        "choose nothing. 'none': no model of that method is within the budget in every seed, and no "
        "number is substituted. Targets with a collapsed class or transfer above clean accuracy (label "
        "leaking) are left out. Bold: the best of the budget."
    )
    doc.table(["method", *[f"within {b * 100:g} pt" for b in budgets]], table)


def lowest_recall(row: Row, reference: Sequence[float | None] | None, who: str) -> str:
    """The class ``row``'s model recognises worst on clean examples, beside ``who``'s recall of
    it (``class 3: 0.41 (dense 0.90)``); ``-`` without per-class recall."""
    recall = [v if v is not None else 1.0 for v in row.get("class_recall") or []]
    if not recall:
        return "-"
    weakest = min(range(len(recall)), key=recall.__getitem__)
    theirs = f" ({who} {reference[weakest]:.2f})" if reference and reference[weakest] is not None else ""
    return f"class {weakest}: {recall[weakest]:.2f}{theirs}"


def sparsity_by_layer(row: Row) -> str:
    """The fraction of each Conv/Linear weight removed (``features.0 0.23, head.3 0.00``)."""
    return ", ".join(
        f"{k.removesuffix('.weight')} {v:.2f}" for k, v in (row.get("layer_sparsity") or {}).items()
    )


def inside_section(doc: Document, rows: Sequence[Row], config: BenchConfig) -> None:
    """Per pruned target of the first seed: fine-tuning, the GAP budget, the weakest class,
    the layers left whole and the per-layer sparsity."""
    seed, attack = config.seeds[0], primary_attack(config)
    chosen = [
        r
        for r in rows
        if r["seed"] == seed
        and r["attack"] == attack
        and r["threat_model"] == "dense"
        and r["eps"] == config.attack_eps
        and r["family"] == "pruning"
        and not r.get("error")
    ]
    if not chosen:
        return
    dense = next((r.get("class_recall") for r in rows if r["target"] == "dense" and r["seed"] == seed), None)
    table = []
    for r in chosen:
        budget = "-" if r.get("gap_eps") is None else f"eps {r['gap_eps']:.4g}, {r.get('gap_steps')} steps"
        table.append(
            [
                r["target"],
                f"{r.get('finetune_best_epoch')} / {r.get('finetune_epochs_run')}",
                budget,
                lowest_recall(r, dense, "dense"),
                ", ".join(r.get("excluded_layers") or []) or "none",
                sparsity_by_layer(r),
            ]
        )
    doc.heading(f"Inside the pruned models (seed {seed})")
    doc.paragraph(
        "Fine-tuning: the epoch kept (best clean accuracy on the validation split) / epochs run. Lowest "
        "class recall: the class recognised worst on clean test data, against the dense model's recall. "
        "Per-layer sparsity: the fraction of each Conv/Linear weight removed."
    )
    header = [
        "target",
        "fine-tuning (kept / run)",
        "GAP budget",
        "lowest class recall",
        "layers left whole",
        "per-layer sparsity",
    ]
    doc.table(header, table)


def sanity_section(doc: Document, checks_by_seed: dict[int, list[SanityCheck]]) -> None:
    if not checks_by_seed:
        return
    table = [
        [str(seed), c.name, "yes" if c.passed else Strong("NO"), f"{c.value:.3f}", c.requirement, c.detail]
        for seed, checks in sorted(checks_by_seed.items())
        for c in checks
    ]
    doc.heading("Sanity checks")
    doc.paragraph(
        "Run on each seed's source model at the study's budget. A failed check marks the numbers of the "
        "attacks it covers with † (not trustworthy); they are still shown."
    )
    doc.table(["seed", "check", "passed", "value", "requirement", "detail"], table)
