"""Write a study's results: JSON, CSV, a Markdown report and plots."""

from __future__ import annotations

import csv
import io
import json
import math
import platform
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gap_art import __version__
from gap_art.bench.config import BenchConfig
from gap_art.bench.runner import ROW_FIELDS
from gap_art.bench.store import Store
from gap_art.evaluation.metrics import Z_95

Row = dict[str, Any]
METRICS = ("clean_accuracy", "transfer_accuracy", "whitebox_accuracy", "transfer_success_rate")


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


def _columns(rows: Sequence[Row]) -> list[str]:
    extra = sorted({key for row in rows for key in row} - set(ROW_FIELDS))
    return list(ROW_FIELDS) + extra


def results_csv(rows: Sequence[Row]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=_columns(rows), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def summarize(rows: Sequence[Row]) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (attack, target): the mean of each metric over seeds and its 95% interval.

    One seed: the Wilson interval over examples. Several seeds: mean +- 1.96 standard
    errors across seeds (the seed-to-seed spread, which includes the example noise).
    """
    groups: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for row in rows:
        if not row.get("error"):
            groups[(row["attack"], row["target"])].append(row)
    summary = {}
    for key, members in groups.items():
        entry: dict[str, Any] = {
            "family": members[0]["family"],
            "method": members[0]["method"],
            "requested_compression": members[0]["requested_compression"],
            "compression": float(np.mean([m["compression"] or 1.0 for m in members])),
            "size_bytes": float(np.mean([m["size_bytes"] or 0 for m in members])),
            "seeds": len(members),
        }
        for metric in METRICS:
            values = [m[metric] for m in members if m.get(metric) is not None]
            entry[metric] = _mean_interval(values, members, metric)
        summary[key] = entry
    return summary


def _mean_interval(values: list[float], members: list[Row], metric: str) -> tuple[float, float, float] | None:
    if not values:
        return None
    mean = float(np.mean(values))
    if len(values) == 1:
        low = members[0].get(f"{metric}_ci_low")
        high = members[0].get(f"{metric}_ci_high")
        return (mean, low if low is not None else mean, high if high is not None else mean)
    half = Z_95 * float(np.std(values, ddof=1)) / math.sqrt(len(values))
    return (mean, max(0.0, mean - half), min(1.0, mean + half))


def _fmt(cell: tuple[float, float, float] | None, best: bool) -> str:
    if cell is None:
        return "-"
    text = f"{cell[0]:.3f} [{cell[1]:.2f}, {cell[2]:.2f}]"
    return f"**{text}**" if best else text


def _best(entries: list[dict[str, Any]], metric: str, lowest: bool) -> float | None:
    values = [e[metric][0] for e in entries if e[metric] is not None]
    if not values:
        return None
    return min(values) if lowest else max(values)


def report_markdown(rows: Sequence[Row], config: BenchConfig, env: dict[str, Any]) -> str:
    """The readable report: one table per attack, then what a reader can and cannot conclude."""
    summary = summarize(rows)
    failed = [r for r in rows if r.get("error")]
    lines = [
        "# gap-art bench report",
        "",
        f"gap-art {__version__}; dataset `{config.dataset}`, model `{config.model}`, "
        f"seeds {config.seeds}, eps {config.attack_eps:g} (L-inf), "
        f"{rows[0]['n'] if rows and rows[0].get('n') else '?'} {config.split} examples per cell; "
        f"device {env['device']}, torch {env['torch']}.",
        "",
        "Each cell: mean over seeds with a 95% interval (one seed: Wilson interval over examples; "
        "several: mean +- 1.96 standard errors across seeds). Examples are crafted on the dense "
        "source model and transferred to each target. **Bold**: best in the column (highest "
        "accuracy, lowest transfer success). Compression is measured from the weights "
        "(prunable weights / nonzero prunable weights). Size: the smaller of the dense and the "
        "bitmap-sparse encoding, float32 or int8.",
        "",
    ]
    for attack in config.attacks:
        entries = [(target, e) for (a, target), e in summary.items() if a == attack]
        if not entries:
            continue
        values = [e for _, e in entries]
        best = {m: _best(values, m, lowest=(m == "transfer_success_rate")) for m in METRICS}
        lines += [
            f"## {attack.upper()}",
            "",
            "| target | family | compression | clean | transfer | white-box "
            "| transfer success | size (KiB) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for target, e in entries:
            cells = [
                _fmt(e[m], e[m] is not None and best[m] is not None and e[m][0] == best[m]) for m in METRICS
            ]
            lines.append(
                f"| {target} | {e['family']} | {e['compression']:.2f} | "
                + " | ".join(cells)
                + f" | {e['size_bytes'] / 1024:.1f} |"
            )
        lines.append("")
    lines += ["## What this shows, and what it does not", "", _conclusions(summary, config), ""]
    if failed:
        lines += ["## Failed cells", ""]
        lines += [f"- {r['target']} / {r['attack']} / seed {r['seed']}: {r['error']}" for r in failed]
        lines.append("")
    return "\n".join(lines)


def _conclusions(summary: dict[tuple[str, str], dict[str, Any]], config: BenchConfig) -> str:
    attack = "pgd" if "pgd" in config.attacks else config.attacks[0]
    sentences = []
    dense = summary.get((attack, "dense"))
    if dense and dense["transfer_accuracy"]:
        sentences.append(
            f"Under {attack.upper()} crafted on the dense model, the dense model itself keeps "
            f"{dense['transfer_accuracy'][0]:.3f} accuracy "
            f"(clean {dense['clean_accuracy'][0]:.3f})."
        )
    for ratio in config.compression:
        pruned = {
            e["method"]: e
            for (a, _), e in summary.items()
            if a == attack and e["family"] == "pruning" and e["requested_compression"] == ratio
        }
        if not pruned:
            continue
        parts = [
            f"{m} {e['transfer_accuracy'][0]:.3f} (clean {e['clean_accuracy'][0]:.3f})"
            for m, e in sorted(pruned.items())
            if e["transfer_accuracy"] is not None and e["clean_accuracy"] is not None
        ]
        sentences.append(f"At {ratio:g}x, transfer accuracy: " + "; ".join(parts) + ".")
    sentences.append(
        "Compare methods by clean and transfer accuracy together (see the Pareto plot): a method "
        "that destroys clean accuracy also stops transfer, and random pruning at high compression "
        "is a strong baseline for that reason. Where intervals overlap, the difference is not "
        f"established with {len(config.seeds)} seed(s)."
    )
    sentences.append(
        "White-box accuracy shows what pruning does not do: an attacker who can query the "
        "gradients of the pruned model itself still succeeds, so GAP hardens against transfer "
        "from the uncompressed model, not against attacks in general. int8 models are "
        "gradient-free and only attacked by transfer here. This report covers the paper's "
        "threat model (examples from the dense parent); attackers who know the defence "
        "(an independently trained or a replica GAP model as source) are not evaluated here."
    )
    return " ".join(sentences)


def plot_results(rows: Sequence[Row], config: BenchConfig, out: Path) -> list[Path]:
    """Pareto view (clean vs transfer) and transfer vs compression, one PNG each per attack."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = summarize(rows)
    paths = []
    for attack in config.attacks:
        entries = [e for (a, _), e in summary.items() if a == attack and e["transfer_accuracy"]]
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
    return paths


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.tight_layout()
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path


def write_outputs(
    rows: Sequence[Row], config: BenchConfig, store: Store, env: dict[str, Any]
) -> dict[str, Path]:
    """results.json, results.csv, report.md and the plots, each written atomically."""
    document = {
        "gap_art_version": __version__,
        "config": config.to_dict(),
        "environment": env,
        "rows": list(rows),
    }
    paths = {
        "results.json": store.write_text("results.json", json.dumps(document, indent=1)),
        "results.csv": store.write_text("results.csv", results_csv(rows)),
        "report.md": store.write_text("report.md", report_markdown(rows, config, env)),
    }
    for path in plot_results(rows, config, store.root):
        paths[path.name] = path
    return paths


def terminal_table(rows: Sequence[Row], attack: str) -> str:
    """A compact table of one attack for the terminal: mean over seeds per target."""
    summary = summarize(rows)
    header = ("target", "compr.", "clean", "transfer", "white-box", "success")
    lines = []
    for (a, target), e in summary.items():
        if a != attack:
            continue
        lines.append(
            (target, f"{e['compression']:.1f}")
            + tuple("-" if e[m] is None else f"{e[m][0]:.3f}" for m in METRICS)
        )
    widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header))]
    text = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *lines]]
    text.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(text)
