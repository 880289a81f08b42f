"""``gap-art report``, ``compare`` and ``list``: reading finished studies and the catalogue."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from gap_art.cli.options import user_errors


def _finished_study(folder: str) -> Any:
    """A click error (exit 2) unless ``folder`` is a finished study."""
    if not (Path(folder) / "results.json").is_file():
        raise click.BadParameter(f"{folder} holds no results.json (not a finished gap-art bench folder)")
    return folder


@click.command()
@click.argument("folder", type=click.Path(file_okay=False, exists=True))
@click.option(
    "--goal",
    "goal_file",
    type=click.Path(dir_okay=False, exists=True),
    help="Also check the study against a goal file (TOML; e.g. benchmarks/goals/harden.toml) and "
    "print the distance to each clause.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="Write the report, the plots and a copy of results.json into this folder instead, leaving "
    "FOLDER untouched (e.g. a committed study).",
)
def report(folder: str, goal_file: str | None, out: str | None) -> None:
    """Redraw report.md, report.html and the plots of a finished study, rerunning no model.

    \b
    Examples:
      gap-art report gap-art-results/20261126-101500
      gap-art report runs/harden --goal benchmarks/goals/harden.toml
      gap-art report benchmarks/results/harden --out /tmp/harden-report
    """
    from gap_art.bench import ConfigError, Goal, check_study_goal, format_goal, read_study, render

    _finished_study(folder)
    try:
        goal = Goal.load(goal_file) if goal_file else None
    except ConfigError as error:
        raise click.BadParameter(str(error), param_hint="'--goal'") from None
    with user_errors():  # a results.json gap-art did not write; a bug keeps its traceback
        study = read_study(folder)
    paths = render(folder, study, out)
    clauses = check_study_goal(study, goal) if goal else []
    for name, path in paths.items():
        click.echo(f"  {name}: {path}")
    if goal is not None:
        click.echo("\n" + format_goal(goal, clauses))


@click.command()
@click.argument("first", type=click.Path(file_okay=False, exists=True))
@click.argument("second", type=click.Path(file_okay=False, exists=True))
@click.option("--attack", help="Show one attack only (default: all).")
def compare(first: str, second: str, attack: str | None) -> None:
    """Studies FIRST (A) and SECOND (B) side by side: shared cells, deltas (B minus A), paired
    tests, and the verdict lines whose conclusion flips (e.g. a rerun with another
    ATEN_CPU_CAPABILITY: a conclusion that flips is numerical noise, not a finding).

    \b
    Example:
      gap-art compare runs/before runs/after --attack pgd
    """
    from gap_art.bench import compare as compare_studies
    from gap_art.bench import flipped_conclusions, format_comparison, format_flips

    _finished_study(first)
    _finished_study(second)
    with user_errors():  # a results.json gap-art did not write; a bug keeps its traceback
        entries = compare_studies(first, second)
        flips = flipped_conclusions(first, second)
    if not entries:
        raise click.UsageError("the two studies share no cell (same seed, target, attack, attacker and eps)")
    click.echo(format_comparison(entries, attack))
    click.echo("\np: exact McNemar on per-example transfer correctness; '-' where the examples differ.")
    click.echo("\n" + format_flips(flips))


@click.command(name="list")
def list_catalogue() -> None:
    """List presets, pruning criteria, attacks, ART defences, models and datasets."""
    from gap_art.bench import catalogue, format_catalogue

    click.echo(format_catalogue(catalogue()), nl=False)
