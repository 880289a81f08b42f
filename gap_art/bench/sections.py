"""The sections of report.md, each a small function from the rows (or their summary) to
Markdown lines, with every cell escaped."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gap_art.bench.config import BenchConfig
from gap_art.bench.rows import Row
from gap_art.bench.summary import Cell, Key, budget_table, combine_paired, paired_tests
from gap_art.bench.tasks import primary_attack
from gap_art.evaluation.sanity import SanityCheck


def fmt(cell: Cell, best: bool = False, interval: bool = True) -> str:
    if cell is None:
        return "-"
    has_interval = interval and (cell[1], cell[2]) != (cell[0], cell[0])
    text = f"{cell[0]:.3f} [{cell[1]:.2f}, {cell[2]:.2f}]" if has_interval else f"{cell[0]:.3f}"
    return f"**{text}**" if best else text


def best_value(cells: list[Cell], lowest: bool) -> float | None:
    values = [c[0] for c in cells if c is not None]
    if not values:
        return None
    return min(values) if lowest else max(values)


def is_best(cell: Cell, best: float | None) -> bool:
    return cell is not None and best is not None and cell[0] == best


def dense_targets(summary: dict[Key, dict[str, Any]], attack: str, eps: float) -> list[str]:
    return list(dict.fromkeys(t for (a, t, th, e) in summary if a == attack and th == "dense" and e == eps))


def attack_section(summary: dict[Key, dict[str, Any]], config: BenchConfig, attack: str) -> list[str]:
    eps = config.attack_eps
    threats = [t for t in config.threat_models if t != "dense"]
    columns: list[tuple[str, str, str, bool]] = [
        ("clean", "dense", "clean_accuracy", False),
        ("transfer (dense)", "dense", "transfer_accuracy", False),
        *[(f"transfer ({t})", t, "transfer_accuracy", False) for t in threats],
        ("white-box", "dense", "whitebox_accuracy", False),
        ("worst case", "dense", "worst_case_transfer_accuracy", False),
        ("transfer success", "dense", "transfer_success_rate", True),
    ]
    targets = dense_targets(summary, attack, eps)
    grid = {
        (target, title): summary.get((attack, target, threat, eps), {}).get(metric)
        for target in targets
        for title, threat, metric, _ in columns
    }
    sound = [t for t in targets if not summary[(attack, t, "dense", eps)]["collapsed_classes"]]
    best = {title: best_value([grid[(t, title)] for t in sound], low) for title, _, _, low in columns}
    lines = [
        f"## {attack.upper()}",
        "",
        "| target | compression | " + " | ".join(c[0] for c in columns) + " | size (KiB) |",
        "|---" * (len(columns) + 3) + "|",
    ]
    for target in targets:
        entry = summary[(attack, target, "dense", eps)]
        mark = "" if entry["trustworthy"] else " †"
        if entry["collapsed_classes"]:
            mark += f" (collapsed classes: {', '.join(map(str, entry['collapsed_classes']))})"
        bold = target in sound
        cells = [
            fmt(grid[(target, title)], bold and is_best(grid[(target, title)], best[title]))
            for title, *_ in columns
        ]
        lines.append(
            f"| {target}{mark} | {entry['compression']:.2f} | "
            + " | ".join(cells)
            + f" | {entry['size_bytes'] / 1024:.1f} |"
        )
    return lines + [""]


def budget_section(rows: Sequence[Row], config: BenchConfig) -> list[str]:
    attack = primary_attack(config)
    entries = budget_table(rows, attack, config.attack_eps)
    if not entries:
        return []
    budgets = sorted({e["budget"] for e in entries})
    lines = [
        f"## Transfer accuracy within a clean-accuracy budget ({attack.upper()} from the dense model)",
        "",
        "Each method's (clean, transfer) points over every ratio and fine-tuning epoch (ART's "
        "defences: their final model) form a curve; a cell is the transfer accuracy it reaches "
        "with clean accuracy at most the budget below the dense model's, read off the curve's upper "
        'envelope (mean over seeds, Student t interval). "none" means no point of that method is '
        "within the budget in every seed: no number is substituted. Targets with a collapsed class "
        "are left out. **Bold**: the best mean of the budget.",
        "",
        "| method | " + " | ".join(f"within {b * 100:g} pt" for b in budgets) + " |",
        "|---" * (len(budgets) + 1) + "|",
    ]
    for method in dict.fromkeys(e["method"] for e in entries):
        cells = []
        for budget in budgets:
            e = next(x for x in entries if x["method"] == method and x["budget"] == budget)
            if e["mean"] is None:
                found = sum(v is not None for v in e["values"])
                cells.append("none" + (f" ({found} of {len(e['values'])} seeds)" if found else ""))
            else:
                cells.append(fmt((e["mean"], e["low"], e["high"]), e.get("best", False)))
        lines.append(f"| {escape(method)} | " + " | ".join(cells) + " |")
    return lines + [""]


def paired_section(rows: Sequence[Row], config: BenchConfig) -> list[str]:
    combined = combine_paired(paired_tests(rows, config.attack_eps))
    attack = primary_attack(config)
    shown = [c for c in combined if c["attack"] == attack]
    if not shown:
        return []
    lines = [
        f"## Paired tests ({attack.upper()}): GAP against every other pruning method",
        "",
        "Exact McNemar test on per-example transfer correctness (the same test examples for both "
        "targets), per seed: the accuracy difference (GAP minus the other) and its two-sided p-value; "
        '"wins" and "losses" count the seeds where the difference is significant (p < 0.05).',
        "",
        "| threat model | ratio | GAP | against | difference per seed | p per seed | wins | losses |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in sorted(shown, key=lambda c: (c["threat_model"] != "dense", c["threat_model"], c["ratio"])):
        differences = ", ".join(f"{d:+.3f}" for d in c["differences"])
        p_values = ", ".join(f"{p:.2g}" for p in c["p_values"])
        lines.append(
            f"| {c['threat_model']} | {c['ratio']:g}x | {escape(c['first'])} | {escape(c['second'])} | "
            f"{differences} | {p_values} | {c['significant_wins']}/{len(c['seeds'])} | "
            f"{c['significant_losses']}/{len(c['seeds'])} |"
        )
    return lines + [""]


def inside_section(rows: Sequence[Row], config: BenchConfig) -> list[str]:
    """Per compressed target of the first seed: fine-tuning, excluded layers, per-layer sparsity
    and the weakest class: what a reader checks before believing a number."""
    seed, attack = config.seeds[0], primary_attack(config)
    chosen = [
        r
        for r in rows
        if r["seed"] == seed and r["attack"] == attack and r["threat_model"] == "dense"
        and r["eps"] == config.attack_eps and r["family"] == "pruning" and not r.get("error")
    ]  # fmt: skip
    if not chosen:
        return []
    lines = [
        f"## Inside the pruned models (seed {seed})",
        "",
        "Fine-tuning: the epoch kept (best clean accuracy on the validation split) / epochs run. "
        "Per-layer sparsity: the fraction of each Conv/Linear weight removed. Lowest recall: the "
        "class the model recognises worst on clean test data (against the dense model's recall).",
        "",
        "| target | fine-tuning (kept / run) | GAP budget | lowest class recall | layers left whole "
        "| per-layer sparsity |",
        "|---|---|---|---|---|---|",
    ]
    dense = next((r["class_recall"] for r in rows if r["target"] == "dense" and r["seed"] == seed), None)
    for r in chosen:
        recall = [v if v is not None else 1.0 for v in r.get("class_recall") or []]
        weakest = min(range(len(recall)), key=recall.__getitem__) if recall else None
        low = "-" if weakest is None else f"class {weakest}: {recall[weakest]:.2f}"
        if weakest is not None and dense:
            low += f" (dense {dense[weakest]:.2f})"
        budget = "-" if r.get("gap_eps") is None else f"eps {r['gap_eps']:.4g}, {r['gap_steps']} steps"
        layers = ", ".join(
            f"{k.removesuffix('.weight')} {v:.2f}" for k, v in (r.get("layer_sparsity") or {}).items()
        )
        lines.append(
            f"| {escape(r['target'])} | {r.get('finetune_best_epoch')} / {r.get('finetune_epochs_run')} | "
            f"{budget} | {low} | {', '.join(r.get('excluded_layers') or []) or 'none'} | {layers} |"
        )
    return lines + [""]


def escape(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def sanity_section(checks_by_seed: dict[int, list[SanityCheck]]) -> list[str]:
    if not checks_by_seed:
        return []
    lines = [
        "## Sanity checks",
        "",
        "Run on each seed's source model at the study's budget. A failed check marks the numbers "
        "of the attacks it covers with † (not trustworthy); they are still shown.",
        "",
        "| seed | check | passed | value | requirement | detail |",
        "|---|---|---|---|---|---|",
    ]
    for seed, checks in sorted(checks_by_seed.items()):
        for c in checks:
            lines.append(
                f"| {seed} | {escape(c.name)} | {'yes' if c.passed else '**NO**'} | {c.value:.3f} | "
                f"{escape(c.requirement)} | {escape(c.detail)} |"
            )
    return lines + [""]
