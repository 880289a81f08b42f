"""The study's plots: clean vs transfer accuracy (Pareto view), transfer accuracy against
compression, and the security curve (accuracy against eps)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gap_art.bench.config import BenchConfig
from gap_art.bench.rows import Row
from gap_art.bench.summary import Key, summarize
from gap_art.bench.tasks import primary_attack
from gap_art.runtime import atomic_write


def plot_results(rows: Sequence[Row], config: BenchConfig, out: Path) -> list[Path]:
    """Pareto view (clean vs transfer) and transfer vs compression per attack, and the
    security curve (accuracy against eps) when the study swept eps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = summarize(rows)
    eps = config.attack_eps
    paths = []
    for attack in config.attacks:
        entries = [
            e
            for (a, _, th, ep), e in summary.items()
            if a == attack and th == "dense" and ep == eps and e["transfer_accuracy"]
        ]
        if not entries:
            continue
        methods = sorted({e["method"] for e in entries})
        colours = {m: plt.get_cmap("tab20")(i % 20) for i, m in enumerate(methods)}
        fig, ax = plt.subplots(figsize=(7, 5))
        for method in methods:
            points = [e for e in entries if e["method"] == method]
            ax.scatter(
                [p["clean_accuracy"][0] for p in points],
                [p["transfer_accuracy"][0] for p in points],
                s=[30 + 20 * math.log2(max(p["compression"], 1.0)) ** 2 for p in points],
                color=colours[method],
                label=method,
                alpha=0.8,
                edgecolors="black",
                linewidths=0.5,
            )
        ax.set_xlabel("clean accuracy")
        ax.set_ylabel(f"transfer accuracy ({attack.upper()} from the dense model)")
        ax.set_title(f"Clean vs transfer accuracy, {config.dataset} ({attack}); size ~ compression")
        ax.legend(fontsize=7, ncol=2)
        ax.grid(alpha=0.3)
        paths.append(_save(fig, out / f"pareto_{attack}.png"))
        fig, ax = plt.subplots(figsize=(7, 5))
        for method in methods:
            points = sorted(
                (e for e in entries if e["method"] == method and e["family"] in ("pruning", "quantization")),
                key=lambda e: e["requested_compression"],
            )
            if points:
                ax.plot(
                    [p["requested_compression"] for p in points],
                    [p["transfer_accuracy"][0] for p in points],
                    marker="o",
                    color=colours[method],
                    label=method,
                )
        ax.set_xscale("log", base=2)
        ax.set_xlabel("compression (requested)")
        ax.set_ylabel("transfer accuracy")
        ax.set_title(f"Transfer accuracy vs compression ({attack})")
        ax.legend(fontsize=7, ncol=2)
        ax.grid(alpha=0.3)
        paths.append(_save(fig, out / f"transfer_vs_compression_{attack}.png"))
    curve = _security_curve(summary, config, plt, out)
    return paths + ([curve] if curve else [])


def _security_curve(
    summary: dict[Key, dict[str, Any]], config: BenchConfig, plt: Any, out: Path
) -> Path | None:
    """Accuracy against eps (transfer solid, white-box dashed) for the dense model and each
    pruning method at the middle compression ratio."""
    attack = primary_attack(config)
    ratio = sorted(config.compression)[len(config.compression) // 2]
    by_target: dict[str, list[tuple[float, dict[str, Any]]]] = defaultdict(list)
    for (a, target, threat, ep), e in summary.items():
        if (
            a == attack
            and threat == "dense"
            and (target == "dense" or (e["family"] == "pruning" and e["requested_compression"] == ratio))
        ):
            by_target[target].append((ep, e))
    if not any(len(points) > 1 for points in by_target.values()):
        return None
    fig, ax = plt.subplots(figsize=(7, 5))
    for i, (target, points) in enumerate(sorted(by_target.items())):
        points.sort(key=lambda p: p[0])
        colour = plt.get_cmap("tab10")(i % 10)
        ax.plot(
            [p[0] for p in points],
            [p[1]["transfer_accuracy"][0] for p in points],
            marker="o",
            color=colour,
            label=f"{target} transfer",
        )
        white = [(p[0], p[1]["whitebox_accuracy"][0]) for p in points if p[1]["whitebox_accuracy"]]
        if white:
            ax.plot(
                *zip(*white, strict=True),
                linestyle="--",
                marker="x",
                color=colour,
                label=f"{target} white-box",
            )
    ax.set_xlabel("eps (L-inf)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"Security curve ({attack}, {ratio:g}x): transfer solid, white-box dashed")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    return _save(fig, out / f"security_curve_{attack}.png")


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110))
    plt.close(fig)
    return path
