"""Write a study's results: results.json, results.csv, the Markdown report (its sections as
small functions), the plots, and the terminal table."""

from __future__ import annotations

import json
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gap_art import __version__
from gap_art.bench.config import BenchConfig
from gap_art.bench.plots import plot_results
from gap_art.bench.rows import Row, results_csv
from gap_art.bench.store import Store
from gap_art.bench.summary import Cell, Key, summarize
from gap_art.bench.tasks import primary_attack
from gap_art.evaluation.export import fixed_width_table
from gap_art.evaluation.sanity import SanityCheck


def environment(device: str) -> dict[str, Any]:
    """Versions, device and threads: what a reader needs to reproduce the numbers."""
    import art
    import torchattacks

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "adversarial_robustness_toolbox": art.__version__,
        "torchattacks": torchattacks.__version__,
        "numpy": np.__version__,
        "device": device,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def _fmt(cell: Cell, best: bool = False, interval: bool = True) -> str:
    if cell is None:
        return "-"
    has_interval = interval and (cell[1], cell[2]) != (cell[0], cell[0])
    text = f"{cell[0]:.3f} [{cell[1]:.2f}, {cell[2]:.2f}]" if has_interval else f"{cell[0]:.3f}"
    return f"**{text}**" if best else text


def _best(cells: list[Cell], lowest: bool) -> float | None:
    values = [c[0] for c in cells if c is not None]
    if not values:
        return None
    return min(values) if lowest else max(values)


def _is_best(cell: Cell, best: float | None) -> bool:
    return cell is not None and best is not None and cell[0] == best


def _targets(summary: dict[Key, dict[str, Any]], attack: str, eps: float) -> list[str]:
    return list(dict.fromkeys(t for (a, t, th, e) in summary if a == attack and th == "dense" and e == eps))


def _attack_table(summary: dict[Key, dict[str, Any]], config: BenchConfig, attack: str) -> list[str]:
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
    targets = _targets(summary, attack, eps)
    grid = {
        (target, title): summary.get((attack, target, threat, eps), {}).get(metric)
        for target in targets
        for title, threat, metric, _ in columns
    }
    best = {title: _best([grid[(t, title)] for t in targets], low) for title, _, _, low in columns}
    lines = [
        f"## {attack.upper()}",
        "",
        "| target | compression | " + " | ".join(c[0] for c in columns) + " | size (KiB) |",
        "|---" * (len(columns) + 3) + "|",
    ]
    for target in targets:
        entry = summary[(attack, target, "dense", eps)]
        mark = "" if entry["trustworthy"] else " †"
        cells = [
            _fmt(grid[(target, title)], _is_best(grid[(target, title)], best[title])) for title, *_ in columns
        ]
        lines.append(
            f"| {target}{mark} | {entry['compression']:.2f} | "
            + " | ".join(cells)
            + f" | {entry['size_bytes'] / 1024:.1f} |"
        )
    return lines + [""]


def _matched_table(summary: dict[Key, dict[str, Any]], config: BenchConfig) -> list[str]:
    attack, eps = primary_attack(config), config.attack_eps
    entries = [
        (target, e)
        for (a, target, threat, ep), e in summary.items()
        if a == attack and threat == "dense" and ep == eps and e["matched_transfer_accuracy"] is not None
    ]
    if not entries:
        return []
    lines = [
        f"## At matched clean accuracy ({attack.upper()} from the dense model)",
        "",
        "Pruning methods compared at equal sparsity *and* at equal clean accuracy: for each ratio, the "
        "matched level is the weakest method's final clean accuracy, and each method's transfer "
        "accuracy is read off its fine-tuning curve where it has that clean accuracy (measured "
        "before and after each fine-tuning epoch). The note says how each number was obtained.",
        "",
        "| target | clean (final) | transfer (final, matched sparsity) | transfer at matched clean "
        "accuracy | how |",
        "|---|---|---|---|---|",
    ]
    for target, e in sorted(entries, key=lambda item: (item[1]["requested_compression"], item[0])):
        lines.append(
            f"| {target} | {_fmt(e['clean_accuracy'], interval=False)} | "
            f"{_fmt(e['transfer_accuracy'], interval=False)} | "
            f"{_fmt(e['matched_transfer_accuracy'])} | {'; '.join(e['notes'])} |"
        )
    return lines + [""]


def _sanity_table(checks_by_seed: dict[int, list[SanityCheck]]) -> list[str]:
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
                f"| {seed} | {c.name} | {'yes' if c.passed else '**NO**'} | {c.value:.3f} | "
                f"{c.requirement} | {c.detail} |"
            )
    return lines + [""]


def report_markdown(
    rows: Sequence[Row],
    config: BenchConfig,
    env: dict[str, Any],
    checks_by_seed: dict[int, list[SanityCheck]] | None = None,
) -> str:
    """The readable report: a table per attack, the matched-accuracy comparison, the sanity
    checks, and what a reader can and cannot conclude."""
    summary = summarize(rows)
    failed = [r for r in rows if r.get("error")]
    n = next((r["n"] for r in rows if r.get("n")), "?")
    lines = [
        "# gap-art bench report",
        "",
        f"gap-art {__version__}; dataset `{config.dataset}`, model `{config.model}`, "
        f"seeds {config.seeds}, eps {config.attack_eps:g} (L-inf), {n} examples of the "
        f"{config.split} split per cell (a seeded subset, data seed {config.data_seed}); threat models "
        f"{', '.join(config.threat_models)}; device {env['device']}, torch {env['torch']}.",
        "",
        "Each cell: mean over seeds with a 95% interval (one seed: Wilson interval over examples; "
        "several: mean +- 1.96 standard errors across seeds). Transfer: examples crafted on the "
        "threat model's source, evaluated on the target. White-box: crafted on the target itself "
        "(int8 targets: on their float parent, transferred). Worst case: correct under every "
        "attack and threat model at once. **Bold**: best in the column (highest accuracy, lowest "
        "transfer success). Compression is measured from the weights (prunable weights / nonzero "
        "prunable weights). Size: the smaller of the dense and the bitmap-sparse encoding, float32 "
        "or int8.",
        "",
    ]
    for attack in config.attacks:
        lines += _attack_table(summary, config, attack)
    lines += _matched_table(summary, config)
    lines += _sanity_table(checks_by_seed or {})
    lines += ["## What this shows, and what it does not", "", _conclusions(summary, config), ""]
    if failed:
        lines += ["## Failed cells", ""]
        lines += [
            f"- {r['target']} / {r['attack']} / {r['threat_model']} / seed {r['seed']}: {r['error']}"
            for r in failed
        ]
        lines.append("")
    return "\n".join(lines)


def _conclusions(summary: dict[Key, dict[str, Any]], config: BenchConfig) -> str:
    attack, eps = primary_attack(config), config.attack_eps
    sentences = []
    dense = summary.get((attack, "dense", "dense", eps))
    if dense and dense["transfer_accuracy"] and dense["clean_accuracy"]:
        sentences.append(
            f"Under {attack.upper()} crafted on the dense model, the dense model itself keeps "
            f"{dense['transfer_accuracy'][0]:.3f} accuracy (clean {dense['clean_accuracy'][0]:.3f})."
        )
    for ratio in config.compression:
        pruned = {
            e["method"]: e
            for (a, _, threat, ep), e in summary.items()
            if a == attack
            and threat == "dense"
            and ep == eps
            and e["family"] == "pruning"
            and e["requested_compression"] == ratio
        }
        parts = [
            f"{m} {e['transfer_accuracy'][0]:.3f} (clean {e['clean_accuracy'][0]:.3f})"
            for m, e in sorted(pruned.items())
            if e["transfer_accuracy"] is not None and e["clean_accuracy"] is not None
        ]
        if parts:
            sentences.append(f"At {ratio:g}x, transfer accuracy: " + "; ".join(parts) + ".")
    sentences.append(
        "Compare methods by clean and transfer accuracy together (the Pareto plot, and the "
        "matched-accuracy table): a method that destroys clean accuracy also stops transfer, and "
        "random pruning at high compression is a strong baseline for that reason. Where intervals "
        f"overlap, the difference is not established with {len(config.seeds)} seed(s)."
    )
    sentences.append(
        "White-box accuracy shows what pruning does not do: an attacker who can query the "
        "gradients of the pruned model itself still succeeds, so GAP hardens against transfer "
        "from the uncompressed model, not against attacks in general."
    )
    if set(config.threat_models) == {"dense"}:
        sentences.append(
            "This report covers the paper's threat model only (examples from the dense parent); "
            "attackers who know the defence (an independent or a replica model as source, or an "
            "ensemble) are not evaluated here: run with --threat-models all."
        )
    else:
        sentences.append(
            "The independent column is the natural transfer gap any second model shows (the floor "
            "to compare against); the replica and ensemble columns are attackers who know the "
            "defence. A hardening claim holds only as far as it survives those columns and the "
            "worst case."
        )
    return " ".join(sentences)


def write_outputs(
    rows: Sequence[Row],
    config: BenchConfig,
    store: Store,
    env: dict[str, Any],
    checks_by_seed: dict[int, list[SanityCheck]] | None = None,
) -> dict[str, Path]:
    """results.json, results.csv, report.md and the plots, each written atomically."""
    document = {
        "gap_art_version": __version__,
        "config": config.to_dict(),
        "environment": env,
        "evaluation_set": {"split": config.split, "n": config.n_test, "selection_seed": config.data_seed},
        "sanity_checks": {
            str(seed): [c.to_dict() for c in checks] for seed, checks in (checks_by_seed or {}).items()
        },
        "rows": list(rows),
    }
    paths = {
        "results.json": store.write_text("results.json", json.dumps(document, indent=1)),
        "results.csv": store.write_text("results.csv", results_csv(rows)),
        "report.md": store.write_text("report.md", report_markdown(rows, config, env, checks_by_seed)),
    }
    for path in plot_results(rows, config, store.root):
        paths[path.name] = path
    return paths


def terminal_table(rows: Sequence[Row], config: BenchConfig) -> str:
    """A compact table of the primary attack for the terminal: mean over seeds per target."""
    summary = summarize(rows)
    attack, eps = primary_attack(config), config.attack_eps
    header = ("target", "compr.", "clean", "transfer", "white-box", "worst", "success")
    metrics = (
        "clean_accuracy",
        "transfer_accuracy",
        "whitebox_accuracy",
        "worst_case_transfer_accuracy",
        "transfer_success_rate",
    )
    lines = []
    for target in _targets(summary, attack, eps):
        e = summary[(attack, target, "dense", eps)]
        lines.append(
            (target + ("" if e["trustworthy"] else " †"), f"{e['compression']:.1f}")
            + tuple(_fmt(e[m], interval=False) for m in metrics)
        )
    return fixed_width_table(header, lines)
