"""The report and plots a person reads first, rendered from a fixed small set of rows: the
verdict on top, escaped tables, an HTML twin with the plots inlined, and plots whose data
(series, x values, int8 at its true compression, the frontier) are what they claim."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gap_art.bench import BenchConfig
from gap_art.bench.drawing import draw
from gap_art.bench.palette import BASELINE_COLOURS, DEFENCE_COLOURS, GAP_COLOURS
from gap_art.bench.plots import plot_specs
from gap_art.bench.report import analyse_study, report_document
from gap_art.bench.rows import pack_correct
from gap_art.bench.summary import analyse
from gap_art.evaluation.sanity import SanityCheck

CONFIG = BenchConfig(methods=["gap-grad", "random"], compression=[4.0], attacks=["pgd"], defences=["fbf"])


def _row(target, family, method, clean, transfer, compression=1.0, eps=0.2, **extra):
    import numpy as np

    correct = np.zeros(100, dtype=bool)
    correct[: int(transfer * 100)] = True
    return {
        "seed": 0,
        "target": target,
        "family": family,
        "method": method,
        "attack": "pgd",
        "eps": eps,
        "threat_model": "dense",
        "requested_compression": compression,
        "compression": compression,
        "size_bytes": 1000,
        "clean_accuracy": clean,
        "transfer_accuracy": transfer,
        "whitebox_accuracy": 0.01,
        "worst_case_transfer_accuracy": transfer,
        "transfer_success_rate": 1 - transfer,
        "n": 100,
        "transfer_correct": pack_correct(correct),
        "class_recall": [clean] * 10,
        "trustworthy": True,
        "collapsed_classes": [],
        **extra,
    }


def _rows():
    gap = {
        "gap_eps": 2 / 255,
        "gap_steps": 10,
        "validation_curve": [[0, 0.5, 0.5], [1, 0.9, 0.3]],
        "validation_clean_accuracy": 0.91,
        "validation_transfer_accuracy": 0.31,
        "layer_sparsity": {"features.0.weight": 0.7, "classifier.3.weight": 0.0},
        "excluded_layers": ["classifier.3.weight"],
        "finetune_best_epoch": 1,
        "finetune_epochs_run": 3,
    }
    return [
        _row(
            "dense",
            "baseline",
            "dense",
            0.95,
            0.02,
            validation_clean_accuracy=0.96,
            validation_transfer_accuracy=0.03,
        ),
        _row("gap-grad@4x", "pruning", "gap-grad", 0.90, 0.30, 4.0, **gap),
        _row(
            "random@4x",
            "pruning",
            "random",
            0.50,
            0.60,
            4.0,
            collapsed_classes=[3, 8],
            validation_curve=[[0, 0.4, 0.6], [1, 0.5, 0.6]],
            validation_clean_accuracy=0.52,
            validation_transfer_accuracy=0.58,
        ),
        _row("gap-grad@4x+int8", "quantization", "gap-grad+int8", 0.89, 0.31, 3.97),
        _row(
            "art:fbf",
            "art_defence",
            "fbf",
            0.93,
            0.25,
            validation_clean_accuracy=0.92,
            validation_transfer_accuracy=0.27,
        ),
    ]


def test_plots_show_what_they_claim(tmp_path):
    plots = {p.name: p for p in plot_specs(_rows(), CONFIG)}
    assert set(plots) == {"pareto_pgd.png"}  # one ratio: no plot against compression
    pareto = {s.label: s for s in plots["pareto_pgd.png"].series}
    assert set(pareto) == {"dense", "gap-grad", "gap-grad+int8", "random", "fbf (ART)"}
    assert (
        pareto["dense"].marker == "*"
        and pareto["gap-grad+int8"].marker == "s"
        and pareto["fbf (ART)"].marker == "^"
    )
    assert (
        pareto["gap-grad"].colour in GAP_COLOURS
        and pareto["gap-grad+int8"].colour == pareto["gap-grad"].colour
    )
    assert pareto["random"].colour in BASELINE_COLOURS and pareto["fbf (ART)"].colour in DEFENCE_COLOURS
    assert pareto["random"].notes == ["4x collapsed"] and pareto["gap-grad"].notes == ["4x"]
    assert pareto["dense"].notes == [""]
    assert (0.5, 0.6) not in plots["pareto_pgd.png"].frontier  # the collapsed target is off the frontier
    assert plots["pareto_pgd.png"].frontier == [(0.89, 0.31), (0.90, 0.30), (0.93, 0.25), (0.95, 0.02)]
    two_ratios = _rows() + [_row("gap-grad@2x", "pruning", "gap-grad", 0.93, 0.2, 2.0, gap_eps=2 / 255)]
    plots = {p.name: p for p in plot_specs(two_ratios, CONFIG)}
    compression = {s.label: s for s in plots["transfer_vs_compression_pgd.png"].series}
    assert compression["gap-grad+int8"].x == [3.97]  # int8 at its measured compression, not at 1
    assert compression["gap-grad"].x == [2.0, 4.0] and compression["gap-grad"].notes == ["2x", "4x"]
    assert compression["dense"].x == [1.0] and "fbf (ART)" not in compression
    for plot in plots.values():
        assert draw(plot, tmp_path / plot.name).read_bytes()[:4] == b"\x89PNG"


def test_the_frontier_plots_validation_picks_per_clean_cost_against_arts_best(tmp_path):
    """Each method's worst-attacker accuracy at the model validation picks within each clean
    cost (the budget table's cells: a collapsed model and an int8 one never), mean and t interval
    over seeds, a line per method; ART's best per cost is the reference front."""
    validation = {"validation_clean_accuracy": 0.95, "validation_transfer_accuracy": 0.2}
    other_ratio = _row("gap-grad@2x", "pruning", "gap-grad", 0.94, 0.2, 2.0, **validation)
    validation = {"validation_clean_accuracy": 0.915, "validation_transfer_accuracy": 0.5}
    picked = _row("gap-grad@4x~5pt", "pruning", "gap-grad", 0.9, 0.4, 4.0, **validation)
    rows = [
        {**row, "seed": seed, "worst_attacker_transfer_accuracy": row["transfer_accuracy"] - 0.02 * seed}
        for seed in (0, 1)
        for row in _rows()
    ]
    plots = plot_specs(rows, CONFIG)
    frontier = plots[0]
    assert frontier.name == "frontier_worst_attacker.png" and plots[1].name == "pareto_worst_attacker.png"
    series = {s.label: s for s in frontier.series}
    assert set(series) == {"gap-grad@4x", "fbf (ART)"}  # random collapsed; dense and int8 not chosen
    gap, fbf = series["gap-grad@4x"], series["fbf (ART)"]
    assert gap.x == [5.0, 10.0] and fbf.x == [5.0, 10.0]  # 5 and 4 points below the dense model
    assert gap.y == pytest.approx([0.29, 0.29]) and gap.line
    low, high = gap.y_err[0]
    assert low == pytest.approx(high) and low > 0.01  # a t interval over two seeds 0.02 apart
    assert frontier.frontier == [(5.0, pytest.approx(0.24)), (10.0, pytest.approx(0.24))]
    assert frontier.frontier_label.startswith("ART's defences")
    assert plot_specs(_rows(), CONFIG)[0].name != frontier.name  # no worst-attacker column: no frontier
    assert draw(frontier, tmp_path / frontier.name).read_bytes()[:4] == b"\x89PNG"
    more = rows + [{**row, "seed": seed, "worst_attacker_transfer_accuracy": row["transfer_accuracy"]}
                   for seed in (0, 1) for row in (other_ratio, picked)]  # fmt: skip
    series = {s.label: s for s in plot_specs(more, CONFIG)[0].series}
    assert series["gap-grad@2x"].x == [1.0, 2.0, 5.0, 10.0]  # each ratio a line of its own
    assert series["gap-grad@2x"].notes == ["", "", "", "2x"] and series["fbf (ART)"].notes == ["", ""]
    assert series["gap-grad@4x"].line_style != series["gap-grad@2x"].line_style  # one colour, two styles
    assert series["gap-grad@4x"].y == pytest.approx([0.4, 0.4])  # the picked epoch, its target's line


def test_a_methods_colour_is_the_same_in_every_study():
    from gap_art.bench.palette import colour

    alone = {s.label: s.colour for s in plot_specs(_rows()[:2], CONFIG)[0].series}
    crowded = {s.label: s.colour for s in plot_specs(_rows(), CONFIG)[0].series}
    assert alone["gap-grad"] == crowded["gap-grad"] == colour("gap-grad", "pruning", True)
    assert colour("my-new-method", "pruning") == colour("my-new-method", "pruning")  # hashed, stable


def test_a_hashed_colour_never_takes_a_well_known_methods():
    """A method the palette does not name hashes into its family's colours, but never onto one
    a named method wears (``magnitude+pool-trades`` once drew in ``magnitude``'s blue)."""
    from gap_art.bench.palette import KNOWN_COLOURS, colour

    known = set(KNOWN_COLOURS.values())
    for name in ("my-new-method", "l1+tat", "magnitude+pool-xyz", "random+gal", "taylor+pool"):
        for family, adversarial in (("pruning", False), ("pruning", True)):
            assert colour(name, family, adversarial) not in known, name
    pools = {
        colour(m, "pruning", True)
        for m in ("magnitude", "magnitude+pool", "magnitude+pool-fgsm", "magnitude+pool-trades")
    }
    assert len(pools) == 4


def test_a_study_without_gap_targets_says_which_attackers_ran():
    from dataclasses import replace

    from gap_art.bench.verdict import verdict

    rows = [r for r in _rows() if r["method"] in ("dense", "random", "fbf")]
    rows += [{**r, "threat_model": "replica"} for r in rows if r["target"] != "dense"]
    config = replace(CONFIG, methods=["random+tat"], threat_models=["dense", "replica"])
    lines = verdict(rows, analyse(rows, "pgd", config.attack_eps), config, {})
    assert len(lines) <= 6
    assert any("Attackers run: dense, replica." in line for line in lines)
    assert not any("Only the paper's attacker" in line for line in lines)


def test_a_security_curve_per_attack_when_eps_is_swept():
    rows = _rows() + [
        _row("dense", "baseline", "dense", 0.95, 0.2, eps=0.1),
        _row("gap-grad@4x", "pruning", "gap-grad", 0.9, 0.5, 4.0, eps=0.1),
    ]
    curves = [p for p in plot_specs(rows, CONFIG) if p.name == "security_curve_pgd.png"]
    assert len(curves) == 1
    series = {s.label: s for s in curves[0].series}
    assert series["gap-grad@4x"].x == [0.1, 0.2] and series["gap-grad@4x"].y == [0.5, 0.3]


def test_the_report_opens_with_the_verdict_and_escapes_its_tables(tmp_path):
    checks = {0: [SanityCheck("pgd works white-box", False, 0.5, "> 0.90 | success", ("pgd",), "a|b")]}
    for name in ("pareto_worst_attacker.png", "frontier_worst_attacker.png"):
        (tmp_path / name).write_bytes(b"\x89PNG fake")
    rows = _rows()
    analysis = analyse_study(rows, CONFIG)
    doc = report_document(rows, CONFIG, {"torch": "2.x", "device": "cpu"}, checks, tmp_path, analysis)
    markdown = doc.to_markdown()
    headings = [line for line in markdown.splitlines() if line.startswith("## ")]
    assert headings[0] == "## Verdict" and markdown.index("## Verdict") < markdown.index("|")
    assert markdown.splitlines()[2].startswith("**Bottom line:")  # the first line answers the question
    verdict = markdown.split("## Verdict")[1].split("\n## ")[0]
    assert len([line for line in verdict.splitlines() if line.startswith("- ")]) <= 6
    assert headings.index(
        "## Exploratory paired tests (PGD): GAP against every other pruning method"
    ) > headings.index(
        "## Pruning methods under PGD (from the dense model)"
    )  # the main tables come before the paired tests
    assert "Primary comparisons: none of the" in verdict and "not against attacks in general" in verdict
    assert "random@4x" in verdict  # the collapsed target is named
    assert "1 sanity check(s) failed" in verdict
    assert "![clean against worst-attacker transfer accuracy](pareto_worst_attacker.png)" in markdown
    assert headings[1] == "## The frontier: worst-attacker transfer accuracy within each clean cost"
    assert headings[2] == "## Clean against worst-attacker transfer accuracy"  # the frontier comes first
    assert "a\\|b" in markdown and "> 0.90 \\| success" in markdown
    assert "random@4x (collapsed classes: 3, 8)" in markdown
    assert "**0.600**" not in markdown  # the collapsed target is never bold
    html = doc.to_html()
    assert html.startswith("<!DOCTYPE html>") and "data:image/png;base64," in html and "a|b" in html
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing fetched from elsewhere


def test_a_white_box_only_attack_that_ran_nothing_is_not_reported(tmp_path):
    """An older study's config may name a white-box attack that was not one of its attacks and
    so ran nothing (gap-art 0.2.0): re-rendering it must not claim that attack was run."""
    from dataclasses import replace

    rows = _rows()
    analysis = analyse(rows, "pgd", CONFIG.attack_eps)
    older = replace(CONFIG, whitebox_attacks=["pgd", "pgd-restarts"])
    markdown = report_document(rows, older, {"device": "cpu"}, {}, tmp_path, analysis).to_markdown()
    assert "PGD-RESTARTS" not in markdown
    ran = [{**rows[0], "attack": "pgd-restarts"}, *rows]  # the same study had it run
    markdown = report_document(ran, older, {"device": "cpu"}, {}, tmp_path, analysis).to_markdown()
    assert "## Pruning methods under PGD-RESTARTS (from the dense model)" in markdown


@pytest.mark.parametrize("text", ["a|b", "x_y*z", "`code`"])
def test_markdown_cells_cannot_break_a_table(text):
    from gap_art.bench.document import Document

    doc = Document("t")
    doc.table(["h"], [[text]])
    body = doc.to_markdown().splitlines()[-1]
    assert body.count("|") - body.count("\\|") == 2  # only the two borders


def test_render_needs_a_finished_study(tmp_path: Path):
    from gap_art.bench import render

    with pytest.raises(FileNotFoundError, match="results.json"):
        render(tmp_path)


def test_report_out_leaves_the_study_folder_untouched(small_study, tmp_path):
    """gap-art report --out DIR redraws a committed study elsewhere: the folder keeps every byte."""
    import shutil

    from click.testing import CliRunner

    from gap_art.cli import main

    study = tmp_path / "committed"
    shutil.copytree(small_study.out, study, ignore=shutil.ignore_patterns("cache"))
    before = {p.name: p.read_bytes() for p in study.iterdir() if p.is_file()}
    result = CliRunner().invoke(main, ["report", str(study), "--out", str(tmp_path / "redrawn")])
    assert result.exit_code == 0, result.output
    assert {p.name: p.read_bytes() for p in study.iterdir() if p.is_file()} == before
    redrawn = tmp_path / "redrawn"
    assert (redrawn / "results.json").read_bytes() == before["results.json"]
    assert (redrawn / "report.md").read_bytes() == before["report.md"]  # the same study, drawn again
    assert (redrawn / "report.html").is_file() and list(redrawn.glob("pareto_*.png"))


def test_plot_labels_name_the_real_ratio_and_never_overprint():
    """An int8 point says its parent's ratio ("4x int8"), each ART defence has its own marker,
    the caption says what the error bars are, and on a crowded plot (many targets at one point,
    as collapsed models pile up) no two label boxes overlap and none leaves the axes: a label
    with no free place is left out and counted in the caption."""
    import matplotlib.pyplot as plt

    from gap_art.bench.drawing import render
    from gap_art.bench.plots import Plot, Series

    rows = _rows() + [_row("art:jpeg", "art_defence", "jpeg", 0.94, 0.05)]
    pareto = {s.label: s for s in plot_specs(rows, CONFIG)[0].series}
    assert pareto["gap-grad+int8"].notes == ["4x int8"]
    assert pareto["fbf (ART)"].marker != pareto["jpeg (ART)"].marker
    assert plot_specs(rows, CONFIG)[0].caption.startswith("Error bars: 95% Wilson intervals")
    crowded = [
        Series(f"m{i}", "black", "o", [0.5, 0.5 + 0.001 * i], [0.5, 0.5], notes=[f"{i}x collapsed", "8x"])
        for i in range(12)
    ]
    plot = Plot("crowded.png", "a title long enough to need wrapping " * 4, "clean", "transfer", crowded,
                caption="Error bars: none.")  # fmt: skip
    fig, texts = render(plot)
    try:
        renderer = fig.canvas.get_renderer()
        boxes = [t.get_window_extent(renderer) for t in texts]
        assert 4 <= len(boxes) < 24  # some placed, the rest left out
        assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
        inside = fig.axes[0].get_window_extent(renderer)
        assert all(inside.x0 <= b.x0 and b.x1 <= inside.x1 for b in boxes)
        caption = fig.texts[-1].get_text()
        assert (
            caption.startswith("Error bars: none.")
            and "label(s) left out where they would overprint" in caption
        )
        assert "\n" in fig.axes[0].get_title()  # the long title wraps instead of running off
    finally:
        plt.close(fig)


def test_training_curves_average_over_seeds_and_mark_the_epoch_each_kept():
    """One table per target: the mean over seeds per epoch, the attackers' columns beside, and
    the kept epoch (the last where no early stopping recorded one, as ART's trainers)."""
    from gap_art.bench.config import BenchConfig
    from gap_art.bench.curve_sections import training_curves

    config = BenchConfig(attacks=["pgd"], eps=0.3)

    def row(seed, curve, sources, best):
        identity = {"target": "m+pool@4x", "attack": "pgd", "threat_model": "dense", "eps": 0.3, "seed": seed}
        return {
            **identity,
            "validation_curve": curve,
            "validation_curve_sources": sources,
            "finetune_best_epoch": best,
        }

    first = row(
        0, [[0, 0.9, 0.1, 0.0], [1, 0.8, 0.5, 0.3]], [{"source": "replica", "accuracy": [0.0, 0.4]}], 1
    )
    second = row(
        1, [[0, 0.7, 0.3, 0.2], [1, 0.6, 0.7, 0.5]], [{"source": "replica", "accuracy": [0.2, None]}], None
    )
    ignored = {**first, "threat_model": "replica"}
    curves = training_curves([first, second, ignored], config)["m+pool@4x"]
    assert curves.columns == ["clean", "PGD from dense", "PGD white-box", "PGD from replica"]
    assert curves.by_epoch[1] == [[0.8, 0.5, 0.3, 0.4], [0.6, 0.7, 0.5, None]]
    assert curves.kept == [1, 1]  # seed 1 recorded no best epoch: its last was kept
    no_whitebox = {**first, "validation_curve": [[0, 0.9, 0.1], [1, 0.8, 0.5]]}
    assert training_curves([no_whitebox], config) == {}  # a plain fine-tuning curve: not a training curve
