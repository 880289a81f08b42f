"""The report of ``gap-art evaluate``: what it did (the user's files, scored as given on
examples crafted on their source), written from its own rows and settings. None of the bench's
defaults appears (no fine-tuning, no GAP budget, no selection on validation), every target it
scored has a row (int8 programs included), and it suggests nothing evaluate cannot run."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gap_art import __version__
from gap_art.bench.attack_roles import attack_label
from gap_art.bench.config import BenchConfig
from gap_art.bench.document import Document, Strong
from gap_art.bench.plots import WORST_PARETO
from gap_art.bench.rows import Row, metric
from gap_art.bench.sections import fmt, lowest_recall, sparsity_by_layer
from gap_art.bench.summary import HEADLINE, Key, summarize
from gap_art.bench.verdict import flag_bullet

SOURCE = "dense"
"""The row name of the source, scored on its own examples."""


def _targets(rows: Sequence[Row]) -> list[str]:
    return list(dict.fromkeys(r["target"] for r in rows if r["target"] != SOURCE))


def _per_target(rows: Sequence[Row], target: str, field: str) -> float | None:
    mine = [r for r in rows if r["target"] == target and not r.get("error")]
    values = [value for r in mine if (value := metric(r, field)) is not None]
    return float(np.mean(values)) if values else None


def evaluation_bottom_line(rows: Sequence[Row], config: BenchConfig) -> str:
    """One short claim per target: its worst-attacker transfer accuracy (the lowest over every
    attacker and L-inf attack evaluate ran), its clean accuracy and what that costs against the
    source, on the test examples (no selection: the files are scored as given)."""
    source = _per_target(rows, SOURCE, "clean_accuracy")
    claims = []
    for target in _targets(rows):
        worst, clean = _per_target(rows, target, HEADLINE), _per_target(rows, target, "clean_accuracy")
        if worst is None or clean is None:
            claims.append(f"{target}: no score (see the failed cells)")
            continue
        cost = f" ({100 * (source - clean):.1f} points below the source's {source:.3f})" if source else ""
        claims.append(
            f"{target}: worst-attacker transfer accuracy {worst:.3f}, clean accuracy {clean:.3f}{cost}"
        )
    attackers = ", ".join(config.threat_models)
    return (
        f"Bottom line (your files as given; the worst of {attackers} x {', '.join(config.attacks)}): "
        + "; ".join(claims)
        + "."
    )


def _setup(rows: Sequence[Row], config: BenchConfig, env: dict[str, Any]) -> str:
    n = next((r["n"] for r in rows if r.get("n")), "?")
    attacks = f"{', '.join(config.attacks)} at eps {config.attack_eps:g} (L-inf)"
    return (
        f"{config.data_name}: the source ({config.arch}) against {', '.join(_targets(rows))}; {attacks} "
        f"crafted by {', '.join(config.threat_models)}, scored on {n} {config.split} examples; gap-art "
        f"{__version__}, torch {env.get('torch')}, {env.get('device')}."
    )


def _targets_section(
    doc: Document, summary: dict[Key, dict[str, Any]], config: BenchConfig, attack: str, root: Path
) -> None:
    """Every target evaluate scored, the source first, under one attack from each attacker."""
    table = []
    for (a, target, threat, eps), e in summary.items():
        if a != attack or eps != config.attack_eps:
            continue
        kind = {"baseline": "source", "quantization": "int8 program"}.get(e["family"], "float model")
        scores = [
            fmt(e[m])
            for m in ("clean_accuracy", "transfer_accuracy", "whitebox_accuracy", "transfer_success_rate")
        ]
        program = e["family"] == "quantization"  # a .pt2 program: its weights are not read
        compression = "-" if program else f"{e['compression']:.2f}"
        size = "-" if program or not e["size_bytes"] else f"{e['size_bytes'] / 1024:.1f}"
        table.append([target, kind, threat, compression, *scores, size])
    doc.heading(f"Targets under {attack_label(attack, config)}")
    header = [
        "target",
        "kind",
        "attacker",
        "compression",
        "clean",
        "transfer",
        "white-box",
        "transfer success",
    ]
    doc.table([*header, "size (KiB)"], table)
    plot = root / f"pareto_{attack}.png"
    if plot.is_file():
        doc.image(plot, f"clean against transfer accuracy ({attack.upper()})")


def _inside_section(doc: Document, rows: Sequence[Row]) -> None:
    """Per float target: its weakest class against the source's, and its per-layer sparsity."""
    source = next((r.get("class_recall") for r in rows if r["target"] == SOURCE), None)
    table = []
    for target in _targets(rows):
        row = next((r for r in rows if r["target"] == target and not r.get("error")), None)
        if row is None or row["family"] == "quantization":
            continue
        table.append([target, lowest_recall(row, source, "source"), sparsity_by_layer(row) or "-"])
    if table:
        doc.heading("Inside your models")
        doc.paragraph(
            "Lowest class recall: the class recognised worst on the clean test examples, against the "
            "source's recall. Per-layer sparsity: the fraction of each Conv/Linear weight that is zero "
            "(0.00: a layer left whole)."
        )
        doc.table(["target", "lowest class recall", "per-layer sparsity"], table)


def _settings_section(doc: Document, config: BenchConfig, env: dict[str, Any]) -> None:
    doc.heading("Method and settings")
    doc.bullets([
        "Targets: your files, scored as given: gap-art evaluate prunes, fine-tunes and selects nothing.",
        "Transfer: examples crafted on each attacker's model (the source, and the attackers you named), "
        "evaluated on every target. An int8 program is scored through its predictions only (no gradients: "
        "not attacked white-box). Worst attacker: the lowest transfer accuracy over every attacker and "
        "L-inf attack.",
        f"Attacks: {', '.join(attack_label(a, config) for a in config.attacks)} at eps "
        f"{config.attack_eps:g}, with the {config.attack_backend} backend.",
        "Compression = prunable weights / nonzero prunable weights, measured from the weights.",
        "Intervals: Wilson over the test examples.",
        "Size: the smaller of the dense and the bitmap-sparse encoding, float32 or int8.",
        "Environment: " + ", ".join(f"{k} {v}" for k, v in env.items() if v is not None) + ".",
    ])  # fmt: skip


def evaluation_document(
    rows: Sequence[Row], config: BenchConfig, env: dict[str, Any], root: Path
) -> Document:
    """The report of a ``gap-art evaluate`` run, top down: the bottom line, the setup, the
    flags, then one table of every target per attack, what is inside the float models, and
    the settings evaluate used."""
    doc = Document("gap-art evaluate report")
    doc.paragraph(Strong(evaluation_bottom_line(rows, config)))
    doc.paragraph(_setup(rows, config, env))
    summary = summarize(rows)
    doc.heading("Verdict")
    doc.bullets([f"Attackers run: {', '.join(config.threat_models)}.", flag_bullet(rows, summary)])
    if (root / WORST_PARETO).is_file():
        doc.image(root / WORST_PARETO, "clean against worst-attacker transfer accuracy")
    for attack in config.attacks:
        _targets_section(doc, summary, config, attack, root)
    _inside_section(doc, rows)
    failed = [r for r in rows if r.get("error")]
    if failed:
        doc.heading("Failed cells")
        doc.bullets([f"{r['target']} / {r['attack']} / {r['threat_model']}: {r['error']}" for r in failed])
    _settings_section(doc, config, env)
    return doc
