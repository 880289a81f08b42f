"""Drawing the study's plots (:mod:`gap_art.bench.plots` says what each shows) with matplotlib:
point labels placed where they overprint nothing, titles wrapped, a caption under the axes."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gap_art.bench.config import BenchConfig
from gap_art.bench.plots import Plot, plot_specs
from gap_art.bench.rows import Row
from gap_art.runtime import atomic_write

LABEL_OFFSETS = (
    (5, 4, "left"), (5, -11, "left"), (-5, 4, "right"), (-5, -11, "right"),
    (5, 14, "left"), (5, -21, "left"), (-5, 14, "right"), (-5, -21, "right"),
)  # fmt: skip
"""Where a point's label may go, in points from it, tried in turn."""


def _place_labels(fig: Any, ax: Any, labels: list[tuple[float, float, str, str]]) -> tuple[list[Any], int]:
    """Each label beside its point at the first offset where it stays inside the axes and
    overlaps no label placed before it; one with no such place is left out. Returns the texts
    placed and how many were left out."""
    renderer = fig.canvas.get_renderer()
    inside = ax.get_window_extent(renderer)
    placed: list[Any] = []
    dropped = 0
    for x, y, note, colour in labels:
        for dx, dy, align in LABEL_OFFSETS:
            text = ax.annotate(note, (x, y), textcoords="offset points", xytext=(dx, dy), ha=align,
                               fontsize=7, color=colour)  # fmt: skip
            box = text.get_window_extent(renderer)
            within = (
                inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0 and box.y1 <= inside.y1
            )
            if within and not any(box.overlaps(other.get_window_extent(renderer)) for other in placed):
                placed.append(text)
                break
            text.remove()
        else:
            dropped += 1
    return placed, dropped


def render(plot: Plot) -> tuple[Any, list[Any]]:
    """The figure of ``plot`` and its point labels (none overprints another)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5.5))
    labels = []
    for s in plot.series:
        x_err = np.array(s.x_err).T if s.x_err else None
        y_err = np.array(s.y_err).T if s.y_err else None
        ax.errorbar(
            s.x,
            s.y,
            yerr=y_err,
            xerr=x_err,
            color=s.colour,
            marker=s.marker,
            linestyle=s.line_style if s.line else "none",
            markersize=12 if s.marker == "*" else 7,
            markeredgecolor=s.colour if s.marker == "s" else "black",
            markerfacecolor="none" if s.marker == "s" else s.colour,
            markeredgewidth=0.5,
            elinewidth=0.8,
            capsize=2,
            alpha=0.9,
            label=s.label,
        )
        labels += [(x, y, note, s.colour) for x, y, note in zip(s.x, s.y, s.notes, strict=False) if note]
    if plot.frontier:
        xs, ys = zip(*plot.frontier, strict=True)
        ax.plot(xs, ys, color="black", linestyle=":", linewidth=1, label=plot.frontier_label)
    if plot.log_x:
        ax.set_xscale("log", base=2)
    ax.set_title("\n".join(textwrap.wrap(plot.title, 75)), fontsize=10)
    ax.set(xlabel=plot.x_label, ylabel=plot.y_label)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.canvas.draw()
    texts, dropped = _place_labels(fig, ax, labels)
    caption = plot.caption + (
        f" {dropped} point label(s) left out where they would overprint." if dropped else ""
    )
    if caption:
        fig.text(0.01, 0.01, caption, fontsize=7, ha="left", va="bottom")
    return fig, texts


def draw(plot: Plot, path: Path) -> Path:
    """Render one plot to a PNG (written atomically)."""
    import matplotlib.pyplot as plt

    fig, _ = render(plot)
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110))
    plt.close(fig)
    return path


def plot_results(rows: Sequence[Row], config: BenchConfig, out: Path) -> list[Path]:
    """Draw every plot of the study into ``out``."""
    return [draw(plot, out / plot.name) for plot in plot_specs(rows, config)]
