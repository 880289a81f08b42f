"""Write a study's results: results.json and results.csv (the data), report.md and
report.html (verdict first, then the plots and the tables), the plots, and the terminal table.
:func:`render` redraws the report and plots of a finished study from its results.json."""

from __future__ import annotations

import json
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gap_art import __version__
from gap_art.attacks import is_linf
from gap_art.bench.attack_roles import primary_attack
from gap_art.bench.comparison_sections import paired_section, primary_section
from gap_art.bench.config import BenchConfig
from gap_art.bench.context import evaluation_seed
from gap_art.bench.curve_sections import curves_section
from gap_art.bench.document import Document, Strong
from gap_art.bench.drawing import plot_results
from gap_art.bench.evaluation_report import evaluation_document
from gap_art.bench.flags import annotate
from gap_art.bench.goal import Clause, Goal, check_goal
from gap_art.bench.plots import HEADLINE_FIGURES, plot_specs
from gap_art.bench.primary import primary_results
from gap_art.bench.rows import Row, results_csv
from gap_art.bench.sections import (
    art_defence_section,
    budget_section,
    fmt,
    inside_section,
    pruning_section,
    sanity_section,
    secret_section,
    threat_section,
    unbounded_section,
)
from gap_art.bench.store import Store
from gap_art.bench.summary import Analysis, analyse, study_budgets, summarize
from gap_art.bench.verdict import bottom_line, verdict, whitebox_only_run
from gap_art.data.splits import SplitRecord
from gap_art.errors import ParameterError
from gap_art.evaluation.export import fixed_width_table
from gap_art.evaluation.sanity import SanityCheck

Checks = dict[int, list[SanityCheck]]


def cpu_model() -> str:
    """The processor's model name: float sums (and so trained models) differ between CPU
    kernels, so exact numbers reproduce only on the same CPU, threads and capability."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


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
        "cpu": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def _setup(rows: Sequence[Row], config: BenchConfig, env: dict[str, Any]) -> str:
    n = next((r["n"] for r in rows if r.get("n")), "?")
    precision = "" if config.precision == "float32" else ", bfloat16 autocast in training and crafting"
    return (
        f"{config.data_name}, {config.arch}, seeds {config.seeds}: {', '.join(config.attacks)} at eps "
        f"{config.attack_eps:g} (L-inf) on {n} {config.split} examples; gap-art {__version__}, "
        f"torch {env.get('torch')}, {env.get('device')}{precision}."
    )


def _settings_section(doc: Document, config: BenchConfig, env: dict[str, Any]) -> None:
    budgets = ", ".join(f"eps {e:.4g} (step {s:.4g})" for e, s in config.gap_budgets())
    fine_tuning = (
        "to convergence: early stopping on clean accuracy of the validation split (training rows no "
        f"model trains on, {config.validation_fraction:g} of the training set's size), patience "
        f"{config.finetune_patience}, at most {config.finetune_epochs} epochs"
        if config.finetune_patience is not None
        else f"{config.finetune_epochs} epochs"
    )
    doc.heading("Method and settings")
    doc.bullets(
        [
            "Compression = prunable weights / nonzero prunable weights, measured from the weights. The "
            + (
                "classifier layer is pruned too (--prune-classifier)."
                if config.prune_classifier
                else "layer producing the logits is not prunable (as in the reference implementation)."
            ),
            f"Every pruned model is fine-tuned {fine_tuning}; the best epoch is kept.",
            f"GAP's calibration attack: PGD, 10 steps, {budgets}, on {config.n_calibration} training images.",
            "Transfer: examples crafted on the attacker's model, evaluated on the target. White-box: "
            "crafted on the target itself (int8 targets: on their float parent, transferred). Worst case: "
            "correct under every attack and attacker at once.",
            "Intervals: one seed, Wilson over examples; several seeds, Student t across seeds. Primary "
            "comparisons: a paired t-test of per-seed differences, Holm over the primary family; "
            "exploratory pairs: exact McNemar on per-example correctness.",
            "Size: the smaller of the dense and the bitmap-sparse encoding, float32 or int8.",
            "Environment: " + ", ".join(f"{k} {v}" for k, v in env.items() if v is not None) + ".",
        ]
    )


def report_document(
    rows: Sequence[Row],
    config: BenchConfig,
    env: dict[str, Any],
    checks: Checks,
    root: Path,
    analysis: Analysis,
) -> Document:
    """The report, top down: the bottom line, setup, verdict (at most six lines), the
    frontier and the worst-attacker Pareto plot, the budget and main tables, then the paired
    tests."""
    if config.targets is not None:  # gap-art evaluate's run: its own report
        return evaluation_document(rows, config, env, root)
    summary = analysis.summary
    doc = Document("gap-art bench report")
    doc.paragraph(Strong(bottom_line(rows, analysis, config)))
    doc.paragraph(_setup(rows, config, env))
    doc.heading("Verdict")
    doc.bullets(verdict(rows, analysis, config, checks))
    for name, heading in HEADLINE_FIGURES.items():
        if (root / name).is_file():
            doc.heading(heading)
            doc.image(root / name, heading.lower())
    budget_section(doc, analysis.budgets, config)
    budget_section(doc, analysis.primary_budgets, config)
    primary_section(doc, analysis.primary)
    drawn = {plot.name: plot.title for plot in plot_specs(rows, config)}
    for attack in [*config.attacks, *whitebox_only_run(rows, config)]:
        pruning_section(doc, summary, config, attack)
        if not is_linf(attack):
            unbounded_section(doc, rows, config, attack)
        for name in (
            f"pareto_{attack}.png",
            f"transfer_vs_compression_{attack}.png",
            f"security_curve_{attack}.png",
        ):
            if name in drawn and (root / name).is_file():
                doc.image(root / name, drawn[name])
    art_defence_section(doc, summary, config)
    threat_section(doc, summary, config)
    secret_section(doc, summary, config)
    inside_section(doc, rows, config)
    curves_section(doc, rows, config)
    paired_section(doc, analysis.combined, config, len(analysis.paired))
    sanity_section(doc, checks)
    failed = [r for r in rows if r.get("error")]
    if failed:
        doc.heading("Failed cells")
        doc.bullets(
            [
                f"{r['target']} / {r['attack']} / {r['threat_model']} / seed {r['seed']}: {r['error']}"
                for r in failed
            ]
        )
    _settings_section(doc, config, env)
    return doc


def render_report(
    rows: Sequence[Row],
    config: BenchConfig,
    env: dict[str, Any],
    checks: Checks,
    store: Store,
    analysis: Analysis,
) -> dict[str, Path]:
    """The plots, report.md and report.html (plots inlined), written atomically."""
    paths = {path.name: path for path in plot_results(rows, config, store.root)}
    doc = report_document(rows, config, env, checks, store.root, analysis)
    paths["report.md"] = store.write_text("report.md", doc.to_markdown())
    paths["report.html"] = store.write_text("report.html", doc.to_html())
    return paths


def analyse_study(rows: Sequence[Row], config: BenchConfig) -> Analysis:
    """The study's statistics (:func:`~gap_art.bench.summary.analyse`) with its primary
    comparisons tested across seeds."""
    analysis = analyse(rows, primary_attack(config), config.attack_eps, study_budgets(config.curve_budgets))
    return replace(analysis, primary=primary_results(rows, config))


def write_outputs(
    rows: Sequence[Row],
    config: BenchConfig,
    store: Store,
    env: dict[str, Any],
    checks: Checks,
    splits: Mapping[str, SplitRecord] | None = None,
) -> dict[str, Path]:
    """results.json, results.csv, then the report and plots, each written atomically;
    ``splits`` records how the study's data splits were drawn (results.json's ``data_splits``)."""
    analysis = analyse_study(rows, config)
    document = {
        "gap_art_version": __version__,
        "config": config.to_dict(),
        "environment": env,
        "data_splits": {name: record.to_dict() for name, record in (splits or {}).items()},
        "evaluation_set": {
            "split": config.split,
            "n": config.n_test,
            "selection_seeds": {str(seed): evaluation_seed(config, seed) for seed in config.seeds},
        },
        "sanity_checks": {str(seed): [c.to_dict() for c in cs] for seed, cs in checks.items()},
        "clean_accuracy_budgets": analysis.budgets,
        "primary_comparisons": [result.to_dict() for result in analysis.primary],
        "paired_tests": analysis.paired,
        "rows": list(rows),
    }
    paths = {
        "results.json": store.write_text("results.json", json.dumps(document, indent=1)),
        "results.csv": store.write_text("results.csv", results_csv(rows)),
    }
    return paths | render_report(rows, config, env, checks, store, analysis)


class StudyFileError(ParameterError):
    """A folder's results.json is not one gap-art wrote (unreadable JSON, or no rows and
    configuration)."""


def load_results(folder: str | Path) -> tuple[list[Row], BenchConfig, dict[str, Any], Checks]:
    """The rows, configuration, environment and sanity checks of a finished study.

    :raises FileNotFoundError: ``folder`` holds no results.json (the study has not finished).
    :raises StudyFileError: its results.json is not a gap-art results file.
    """
    path = Path(folder) / "results.json"
    if not path.is_file():
        raise FileNotFoundError(f"{folder} holds no results.json: is it a finished gap-art bench folder?")
    try:
        document = json.loads(path.read_text())
        checks = {
            int(seed): [SanityCheck(**{**c, "affects": tuple(c["affects"])}) for c in items]
            for seed, items in document.get("sanity_checks", {}).items()
        }
        stored, rows = document["config"], document["rows"]
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise StudyFileError(f"{path} is not a readable gap-art results file: {error}") from None
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise StudyFileError(
            f"{path} is not a readable gap-art results file: its rows are not a list of rows"
        )
    if "model" in stored:  # a study written before 0.2 named the architecture 'model'
        stored = {("arch" if key == "model" else key): value for key, value in stored.items()}
    config = BenchConfig.from_dict(stored, files=False)  # its data and models may be gone
    return rows, config, document.get("environment", {}), checks


@dataclass
class FinishedStudy:
    """A finished study read back: its rows with the cross-cell flags derived again from its
    cells, and their analysis."""

    rows: list[Row]
    config: BenchConfig
    env: dict[str, Any]
    checks: Checks
    analysis: Analysis


def read_study(folder: str | Path) -> FinishedStudy:
    """The study in ``folder``, rerunning no model: flags and statistics derived from its cells."""
    rows, config, env, checks = load_results(folder)
    annotate(rows, checks, config.attack_eps)
    return FinishedStudy(rows, config, env, checks, analyse_study(rows, config))


def render(
    folder: str | Path, study: FinishedStudy | None = None, out: str | Path | None = None
) -> dict[str, Path]:
    """Redraw report.md, report.html and the plots of a finished study from its results.json
    (``study``: the folder already read by :func:`read_study`), in ``folder`` or, with ``out``,
    in that folder beside a copy of results.json, leaving ``folder`` as it is."""
    s = study or read_study(folder)
    store = Store(out if out is not None else folder)
    paths: dict[str, Path] = {}
    if out is not None:
        store.root.mkdir(parents=True, exist_ok=True)
        paths["results.json"] = store.write_text("results.json", (Path(folder) / "results.json").read_text())
    return paths | render_report(s.rows, s.config, s.env, s.checks, store, s.analysis)


def check_study_goal(study: str | Path | FinishedStudy, goal: Goal) -> list[Clause]:
    """Every clause of ``goal`` against a finished study (a folder, or one already read)."""
    s = study if isinstance(study, FinishedStudy) else read_study(study)
    return check_goal(goal, s.rows, s.config.attack_eps)


def terminal_table(rows: Sequence[Row], config: BenchConfig) -> str:
    """A compact table of the primary attack for the terminal: mean over seeds per target."""
    summary = summarize(rows)
    attack, eps = primary_attack(config), config.attack_eps
    metrics = (
        "clean_accuracy",
        "transfer_accuracy",
        "whitebox_accuracy",
        "worst_case_transfer_accuracy",
        "transfer_success_rate",
    )
    lines = []
    for (a, target, threat, e), entry in summary.items():
        if a == attack and threat == "dense" and e == eps:
            name = (
                target
                + ("" if entry["trustworthy"] else " †")
                + (" ‡" if entry.get("transfer_exceeds_clean") else "")
                + (" (collapsed)" if entry["collapsed_classes"] else "")
            )
            lines.append(
                (name, f"{entry['compression']:.1f}", *[fmt(entry[m], interval=False) for m in metrics])
            )
    return fixed_width_table(
        ("target", "compr.", "clean", "transfer", "white-box", "worst", "success"), lines
    )
