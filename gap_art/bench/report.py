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
from gap_art.bench.sections import (
    attack_section,
    budget_section,
    dense_targets,
    fmt,
    inside_section,
    paired_section,
    sanity_section,
)
from gap_art.bench.store import Store
from gap_art.bench.summary import Key, budget_table, paired_tests, summarize
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
        lines += attack_section(summary, config, attack)
    lines += budget_section(rows, config)
    lines += paired_section(rows, config)
    lines += inside_section(rows, config)
    lines += sanity_section(checks_by_seed or {})
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
        "Compare methods by clean and transfer accuracy together (the Pareto plot and the "
        "clean-accuracy budget table): a method that destroys clean accuracy also stops transfer, "
        "and random pruning at high compression is a strong baseline for that reason. A difference "
        "between two methods is established only where its paired test is significant (the paired "
        f"tests table); {len(config.seeds)} seed(s) were run. Targets with a collapsed class are "
        "broken rather than hardened and are never marked best."
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
            "to compare against); the replica (the defence rerun on our dense model with the "
            "attacker's own seed and data), replica-independent and ensemble columns are attackers "
            "who know the defence. A hardening claim holds only as far as it survives those columns "
            "and the worst case."
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
        "clean_accuracy_budgets": budget_table(rows, primary_attack(config), config.attack_eps),
        "paired_tests": paired_tests(rows, config.attack_eps),
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
    for target in dense_targets(summary, attack, eps):
        e = summary[(attack, target, "dense", eps)]
        lines.append(
            (target + ("" if e["trustworthy"] else " †"), f"{e['compression']:.1f}")
            + tuple(fmt(e[m], interval=False) for m in metrics)
        )
    return fixed_width_table(header, lines)
