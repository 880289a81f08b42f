"""``gap-art bench``: the whole study, one option per :class:`~gap_art.bench.BenchConfig` field."""

from __future__ import annotations

import json
from typing import Any

import click

from gap_art.cli.options import ConfigCommand, LazyChoice, as_flag, presets


def _bench_config() -> type:
    from gap_art.bench.config import BenchConfig

    return BenchConfig


@click.command(cls=ConfigCommand, config=_bench_config, position=2)
@click.option(
    "--preset", type=LazyChoice(presets), default="quick", show_default=True, help="A preset study."
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    help="TOML or JSON file of settings (the keys are the options below, with underscores).",
)
@click.option("--model", "model_alias", hidden=True, help="Deprecated: --arch.")
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
@click.option(
    "--allow-mixed-environment",
    is_flag=True,
    help="Resume over cached tasks computed with other threads, CPU capability, device or "
    "precision (refused by default; recorded in results.json).",
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
    model_alias: str | None,
    out: str | None,
    resume: bool,
    allow_mixed_environment: bool,
    quiet: bool,
    dry_run: bool,
    allow_failures: bool,
    executor: str,
    ray_address: str | None,
    cpus_per_task: int | None,
    gpus_per_task: float,
    **settings: Any,
) -> None:
    """Run the whole study: train, prune, quantize, attack, compare with ART's defences.

    Every setting of a config file is also an option; an option given overrides the preset
    and the config file.

    \b
    Examples:
      gap-art bench                                  # the quick preset (digits, under a minute)
      gap-art bench --preset fashion --out runs/fm   # Fashion-MNIST, 3 seeds
      gap-art bench --methods gap-grad,random --compression 4 --threat-models all --dry-run
    """
    from gap_art import bench as bench_api
    from gap_art.bench.report import terminal_table
    from gap_art.data import DataUnavailableError

    if model_alias is not None:
        click.echo("--model is deprecated: use --arch", err=True)
        settings["arch"] = settings["arch"] or model_alias
    try:
        config = bench_api.preset(preset)
        if config_file is not None:
            config = bench_api.load_config_file(config_file, base=config)
    except bench_api.ConfigError as error:
        raise click.UsageError(str(error)) from None
    given = {name: value for name, value in settings.items() if value is not None}
    try:
        config = bench_api.BenchConfig.from_dict(given, base=config)
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
            config,
            out=out,
            executor=executor,
            resume=resume,
            progress=not quiet,
            allow_mixed_environment=allow_mixed_environment,
            **executor_options,
        )
    except (PermissionError, bench_api.RayUnavailableError, bench_api.ConfigError) as error:
        raise click.UsageError(as_flag(str(error))) from None
    except DataUnavailableError as error:
        raise click.ClickException(str(error)) from None
    click.echo(terminal_table(results.rows, config))
    failed_checks = len(results.failed_checks)
    click.echo(
        f"\n{len(results.rows)} cells in {results.wall_time_s:.1f} s; {len(results.failed)} failed; "
        f"{failed_checks} sanity check(s) failed."
    )
    for seed, checks in results.checks.items():
        for check in (c for c in checks if not c.passed):
            click.echo(f"  seed {seed}: {check.describe()}")
    for name, path in results.files.items():
        click.echo(f"  {name}: {path}")
    if (results.failed or failed_checks) and not allow_failures:
        click.echo("Some cells or sanity checks failed (see report.md); --allow-failures exits 0.", err=True)
        raise SystemExit(1)
