"""The ``gap-art`` command line: a thin layer over :mod:`gap_art.bench` and friends."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from gap_art import __version__
from gap_art.cli_evaluate import evaluate
from gap_art.cli_models import prune, quantize, train
from gap_art.cli_options import (
    LIST_HELP,
    LazyChoice,
    RegistryOption,
    art_defences,
    as_flag,
    attacks,
    criteria,
    datasets,
    overrides,
    presets,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gap-art")
def main() -> None:
    """gap-art: Greedy Adversarial Pruning and transfer attacks on compressed models, for ART."""


@main.command()
@click.option(
    "--preset", type=LazyChoice(presets), default="quick", show_default=True, help="A preset study."
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    help="TOML or JSON file of settings.",
)
@click.option("--dataset", type=LazyChoice(datasets), help="Dataset (default: the preset's).")
@click.option("--model", help="small-cnn, lenet, resnet20, resnet56, vgg11-bn or a torchvision model.")
@click.option(
    "--methods",
    cls=RegistryOption,
    names=criteria,
    help=f"Methods, {LIST_HELP} (or 'all' criteria): a criterion, optionally +iter (pruned in rounds) "
    "and +tat or +gal (hardened against transfer from the source), e.g. gap-grad+tat, gap-iter.",
)
@click.option("--compression", help=f"Compression ratios > 1, {LIST_HELP}.")
@click.option(
    "--attacks", cls=RegistryOption, names=attacks, help=f"Attacks crafted on the source, {LIST_HELP}."
)
@click.option(
    "--threat-models",
    help=f"Who crafts the examples: dense, independent, replica, ensemble ({LIST_HELP}, or 'all').",
)
@click.option("--curve-eps", help=f"Multiples of eps for security curves, {LIST_HELP} (e.g. 0.25,0.5,1,2).")
@click.option(
    "--sanity-checks/--no-sanity-checks", default=None, help="Run the attack sanity checks (default: on)."
)
@click.option(
    "--whitebox-attacks",
    cls=RegistryOption,
    names=attacks,
    help=f"Attacks also run white-box on each target ({LIST_HELP}, or 'none').",
)
@click.option("--eps", type=float, help="L-inf attack budget (default: the dataset's).")
@click.option(
    "--gap-eps",
    help=f"Budget(s) of GAP's calibration attack, {LIST_HELP} for a sweep (default 2/255 of the range).",
)
@click.option(
    "--prune-classifier/--keep-classifier",
    default=None,
    help="Also prune the layer producing the logits (default: kept, as in the reference).",
)
@click.option(
    "--defences",
    cls=RegistryOption,
    names=art_defences,
    help=f"ART defences to compare with ({LIST_HELP}, 'all' or 'none').",
)
@click.option("--seeds", help=f"Seeds, {LIST_HELP}.")
@click.option("--epochs", type=int, help="Training epochs of the source model.")
@click.option(
    "--source-checkpoint",
    type=click.Path(dir_okay=False),
    help="Study your trained model instead of training one: a gap-art checkpoint, or a state_dict "
    "of --model. Seeds then vary calibration, fine-tuning and the attacker's models only.",
)
@click.option("--finetune-epochs", type=int, help="Fine-tuning epochs after pruning (the maximum).")
@click.option(
    "--finetune-patience",
    type=int,
    help="Stop fine-tuning after this many epochs without a better validation accuracy.",
)
@click.option(
    "--validation-fraction",
    type=float,
    help="Share of the training data held out for early stopping (default 0.1).",
)
@click.option("--n-train", type=int, help="Training examples (a seeded subset).")
@click.option("--n-test", type=int, help="Test examples attacked (a seeded subset).")
@click.option("--attack-backend", type=click.Choice(["torchattacks", "art"]), help="Attack library.")
@click.option(
    "--device", type=click.Choice(["auto", "cpu", "cuda"]), help="Where to compute (default: auto)."
)
@click.option("--data-dir", type=click.Path(file_okay=False), help="Where datasets are read from.")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="Results folder (default ./gap-art-results/<time>).",
)
@click.option(
    "--resume/--no-resume",
    default=True,
    show_default=True,
    help="Reuse finished cells and cached models.",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print the resolved settings and the number of tasks and cells, then exit.",
)
@click.option(
    "--allow-failures",
    is_flag=True,
    help="Exit 0 even when a cell failed or a sanity check failed (default: exit 1).",
)
@click.option(
    "--executor",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="Run in this process, or as Ray tasks (pip install 'gap-art[ray]').",
)
@click.option(
    "--ray-address", help="Join this Ray cluster (default: start a local Ray sized to the machine)."
)
@click.option("--cpus-per-task", type=click.IntRange(min=1), help="CPUs (torch threads) per task.")
@click.option("--gpus-per-task", type=click.FloatRange(min=0), default=0.0, help="GPUs per Ray task.")
def bench(
    preset: str,
    config_file: str | None,
    out: str | None,
    resume: bool,
    quiet: bool,
    dry_run: bool,
    allow_failures: bool,
    executor: str,
    ray_address: str | None,
    cpus_per_task: int | None,
    gpus_per_task: float,
    **options: Any,
) -> None:
    """Run the whole study: train, prune, quantize, attack, compare with ART's defences.

    \b
    Examples:
      gap-art bench                                  # the quick preset (digits, under a minute)
      gap-art bench --preset fashion --out runs/fm   # Fashion-MNIST, 3 seeds
      gap-art bench --methods gap-grad,random --compression 4 --threat-models all --dry-run
    """
    from gap_art import bench as bench_api
    from gap_art.bench.report import terminal_table
    from gap_art.data import DataUnavailableError

    try:
        config = bench_api.preset(preset)
        if config_file is not None:
            config = bench_api.load_config_file(config_file, base=config)
    except bench_api.ConfigError as error:
        raise click.UsageError(str(error)) from None
    try:
        config = bench_api.BenchConfig.from_dict(overrides(options), base=config)
    except bench_api.ConfigError as error:
        raise click.UsageError(as_flag(str(error))) from None
    if dry_run:
        click.echo(json.dumps(bench_api.plan(config), indent=1))
        return
    executor_options: dict[str, Any] = {"cpus_per_task": cpus_per_task}
    if executor == "ray":
        executor_options.update(ray_address=ray_address, gpus_per_task=gpus_per_task)
    elif ray_address is not None or gpus_per_task:
        raise click.UsageError("--ray-address and --gpus-per-task need --executor ray")
    try:
        results = bench_api.run(
            config, out=out, executor=executor, resume=resume, progress=not quiet, **executor_options
        )
    except (PermissionError, bench_api.RayUnavailableError) as error:
        raise click.UsageError(str(error)) from None
    except DataUnavailableError as error:
        raise click.ClickException(str(error)) from None
    click.echo(terminal_table(results.rows, config))
    failed_checks = len(results.failed_checks)
    click.echo(
        f"\n{len(results.rows)} cells in {results.wall_time_s:.1f} s; {len(results.failed)} failed; "
        f"{failed_checks} sanity check(s) failed."
    )
    for name, path in results.files.items():
        click.echo(f"  {name}: {path}")
    if (results.failed or failed_checks) and not allow_failures:
        click.echo("Some cells or sanity checks failed (see report.md); --allow-failures exits 0.", err=True)
        raise SystemExit(1)


def _finished_study(folder: str) -> Any:
    """A click error (exit 2) unless ``folder`` is a finished study."""
    if not (Path(folder) / "results.json").is_file():
        raise click.BadParameter(f"{folder} holds no results.json (not a finished gap-art bench folder)")
    return folder


def _unreadable(folder: str, error: Exception) -> click.UsageError:
    """A results.json that is not one gap-art wrote (exit 2, no traceback)."""
    return click.UsageError(f"{folder}/results.json is not a readable gap-art results file: {error}")


@main.command()
@click.argument("folder", type=click.Path(file_okay=False, exists=True))
def report(folder: str) -> None:
    """Redraw report.md, report.html and the plots of a finished study, recomputing nothing.

    \b
    Example:
      gap-art report gap-art-results/20261126-101500
    """
    from gap_art.bench import render

    _finished_study(folder)
    try:
        paths = render(folder)
    except (ValueError, KeyError, TypeError) as error:  # JSON and config errors are ValueErrors
        raise _unreadable(folder, error) from None
    for name, path in paths.items():
        click.echo(f"  {name}: {path}")


@main.command()
@click.argument("first", type=click.Path(file_okay=False, exists=True))
@click.argument("second", type=click.Path(file_okay=False, exists=True))
@click.option("--attack", help="Show one attack only (default: all).")
def compare(first: str, second: str, attack: str | None) -> None:
    """Studies FIRST (A) and SECOND (B) side by side: shared cells, deltas (B minus A), paired tests.

    \b
    Example:
      gap-art compare runs/before runs/after --attack pgd
    """
    from gap_art.bench import compare as compare_studies
    from gap_art.bench import format_comparison

    _finished_study(first)
    _finished_study(second)
    try:
        entries = compare_studies(first, second)
    except (ValueError, KeyError, TypeError) as error:
        raise _unreadable(f"{first} or {second}", error) from None
    if not entries:
        raise click.UsageError("the two studies share no cell (same seed, target, attack, attacker and eps)")
    click.echo(format_comparison(entries, attack))
    click.echo("\np: exact McNemar on per-example transfer correctness; '-' where the examples differ.")


@main.command(name="list")
def list_catalogue() -> None:
    """List presets, pruning criteria, attacks, ART defences, models and datasets."""
    from gap_art.bench import catalogue, format_catalogue

    click.echo(format_catalogue(catalogue()), nl=False)


main.add_command(train)
main.add_command(prune)
main.add_command(quantize)
main.add_command(evaluate)
