"""The ``gap-art`` command line: a thin layer over :mod:`gap_art.bench` and friends."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from gap_art import __version__

LIST_HELP = "comma-separated"


def _criteria() -> list[str]:
    from gap_art.pruning.importance import IMPORTANCE

    return IMPORTANCE.names()


def _attacks() -> list[str]:
    from gap_art.attacks import ATTACKS

    return ATTACKS.names()


def _art_defences() -> list[str]:
    from gap_art.defences.art_builtin import ART_DEFENCES

    return ART_DEFENCES.names()


class RegistryOption(click.Option):
    """An option whose help ends with a registry's names, read when the help is shown, so
    that criteria, attacks and defences registered by plugins are listed too."""

    def __init__(self, *args: Any, names: Callable[[], list[str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.names = names
        self.template = self.help or ""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        self.help = f"{self.template} Known: {', '.join(self.names())}."
        return super().get_help_record(ctx)


def _split(value: str | None) -> list[str] | None:
    if value is None:
        return None
    items = [item.strip() for item in value.split(",") if item.strip()]
    return [] if items == ["none"] else items


def _numbers(value: str | None, kind: type, name: str) -> list | None:
    items = _split(value)
    if items is None:
        return None
    try:
        return [kind(item) for item in items]
    except ValueError:
        raise click.BadParameter(
            f"expected {LIST_HELP} {kind.__name__}s, got {value!r}", param_hint=name
        ) from None


def _overrides(options: dict[str, Any]) -> dict[str, Any]:
    """CLI options that were given, as BenchConfig fields."""
    from gap_art.bench.config import THREAT_MODELS
    from gap_art.defences.art_builtin import ART_DEFENCES
    from gap_art.pruning.importance import IMPORTANCE

    lists = {
        "methods": _split(options["methods"]),
        "attacks": _split(options["attacks"]),
        "defences": _split(options["defences"]),
        "whitebox_attacks": _split(options["whitebox_attacks"]),
        "compression": _numbers(options["compression"], float, "--compression"),
        "seeds": _numbers(options["seeds"], int, "--seeds"),
        "threat_models": _split(options["threat_models"]),
        "curve_eps": _numbers(options["curve_eps"], float, "--curve-eps"),
    }
    everything = {
        "methods": IMPORTANCE.names(),
        "defences": ART_DEFENCES.names(),
        "threat_models": list(THREAT_MODELS),
    }
    for name, known in everything.items():
        if lists[name] == ["all"]:
            lists[name] = list(known)
    plain = (
        "dataset",
        "model",
        "eps",
        "gap_eps",
        "epochs",
        "finetune_epochs",
        "n_train",
        "n_test",
        "device",
        "data_dir",
        "attack_backend",
    )
    given = {key: options[key] for key in plain + ("sanity_checks",) if options[key] is not None}
    given.update({key: value for key, value in lists.items() if value is not None})
    return given


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gap-art")
def main() -> None:
    """gap-art: Greedy Adversarial Pruning and transfer attacks on compressed models, for ART."""


@main.command()
@click.option("--preset", default="quick", show_default=True, help="quick, fashion or cifar10.")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    help="TOML or JSON file of settings.",
)
@click.option("--dataset", help="digits, fashion-mnist, mnist or cifar10.")
@click.option("--model", help="small-cnn, lenet, resnet20, resnet56, vgg11-bn or a torchvision model.")
@click.option(
    "--methods", cls=RegistryOption, names=_criteria, help=f"Pruning criteria, {LIST_HELP} (or 'all')."
)
@click.option("--compression", help=f"Compression ratios > 1, {LIST_HELP}.")
@click.option(
    "--attacks", cls=RegistryOption, names=_attacks, help=f"Attacks crafted on the source, {LIST_HELP}."
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
    names=_attacks,
    help=f"Attacks also run white-box on each target ({LIST_HELP}, or 'none').",
)
@click.option("--eps", type=float, help="L-inf attack budget (default: the dataset's).")
@click.option("--gap-eps", type=float, help="Budget of GAP's calibration attack (default 2/255).")
@click.option(
    "--defences",
    cls=RegistryOption,
    names=_art_defences,
    help=f"ART defences to compare with ({LIST_HELP}, 'all' or 'none').",
)
@click.option("--seeds", help=f"Seeds, {LIST_HELP}.")
@click.option("--epochs", type=int, help="Training epochs of the source model.")
@click.option("--finetune-epochs", type=int, help="Fine-tuning epochs after pruning.")
@click.option("--n-train", type=int, help="Training examples (a seeded subset).")
@click.option("--n-test", type=int, help="Test examples attacked (a seeded subset).")
@click.option("--attack-backend", help="torchattacks or art.")
@click.option("--device", help="auto, cpu or cuda.")
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
    executor: str,
    ray_address: str | None,
    cpus_per_task: int | None,
    gpus_per_task: float,
    **options: Any,
) -> None:
    """Run the whole study: train, prune, quantize, attack, compare with ART's defences."""
    from gap_art import bench as bench_api
    from gap_art.bench.report import terminal_table
    from gap_art.data import DataUnavailableError

    try:
        config = bench_api.preset(preset)
        if config_file is not None:
            config = bench_api.load_config_file(config_file, base=config)
        config = bench_api.BenchConfig.from_dict(_overrides(options), base=config)
    except bench_api.ConfigError as error:
        raise click.UsageError(str(error)) from None
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
    click.echo(f"\n{len(results.rows)} cells in {results.wall_time_s:.1f} s; {len(results.failed)} failed.")
    for name, path in results.files.items():
        click.echo(f"  {name}: {path}")


@main.command()
@click.option("--dataset", default="digits", show_default=True)
@click.option(
    "--model",
    default=None,
    help="Default: small-cnn for digits, lenet for 28x28, resnet20 for cifar10.",
)
@click.option("--epochs", type=int, default=None, help="Default: 30 (small CNNs) or 160 (ResNet/VGG).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--data-dir", type=click.Path(file_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="Checkpoint file to write.")
def train(
    dataset: str,
    model: str | None,
    epochs: int | None,
    seed: int,
    device: str,
    data_dir: str | None,
    out: str,
) -> None:
    """Train a model and save a checkpoint (loadable with gap_art.checkpoint.load_checkpoint)."""
    import torch

    from gap_art.checkpoint import save_checkpoint
    from gap_art.data import DataUnavailableError, load_dataset
    from gap_art.models import create_model
    from gap_art.models.registry import model_recipe
    from gap_art.training import RECIPES, evaluate_accuracy, train_model

    try:
        data = load_dataset(dataset, data_dir=data_dir)
        name = model or {"digits": "small-cnn", "cifar10": "resnet20"}.get(dataset, "lenet")
        torch.manual_seed(seed)
        net = create_model(name, data.info.input_shape, data.info.nb_classes)
    except DataUnavailableError as error:
        raise click.ClickException(str(error)) from None
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    recipe = model_recipe(name)
    n_epochs = epochs if epochs is not None else (30 if recipe == "adam" else 160)
    if n_epochs < 0:
        raise click.BadParameter("must be >= 0", param_hint="--epochs")
    train_model(net, data.train, n_epochs, RECIPES[recipe], seed, device)
    accuracy = evaluate_accuracy(net, data.test, device=device)
    path = save_checkpoint(
        Path(out),
        net,
        name,
        data.info,
        {"epochs": n_epochs, "seed": seed, "test_accuracy": accuracy},
    )
    click.echo(f"{name} on {dataset}: test accuracy {accuracy:.4f}; saved {path}")


@main.command(name="list")
def list_catalogue() -> None:
    """List presets, pruning criteria, attacks, ART defences, models and datasets."""
    for title, entries in catalogue().items():
        click.echo(f"{title}:")
        width = max(len(name) for name in entries)
        for name, description in entries.items():
            click.echo(f"  {name.ljust(width)}  {description}".rstrip())
        click.echo()


def catalogue() -> dict[str, dict[str, str]]:
    """Every name the command line accepts, with one line each, read from the registries."""
    from gap_art.attacks import ATTACKS
    from gap_art.bench import PRESETS
    from gap_art.data import DATASETS
    from gap_art.defences.art_builtin import ART_DEFENCES
    from gap_art.models import MODELS
    from gap_art.pruning.importance import IMPORTANCE

    def described(registry: Any) -> dict[str, str]:
        return {name: cls.description for name, cls in registry}

    return {
        "presets": {name: f"{c.dataset}, {c.model}, seeds {c.seeds}" for name, c in PRESETS.items()},
        "pruning criteria (--methods)": described(IMPORTANCE),
        "attacks (--attacks)": described(ATTACKS),
        "ART defences (--defences)": described(ART_DEFENCES),
        "models (--model; or any torchvision classifier)": {
            name: f"{spec.input_hw[0]}x{spec.input_hw[1]} inputs" for name, spec in MODELS.items()
        },
        "datasets (--dataset)": {
            name: f"{'x'.join(map(str, info.input_shape))}, {info.nb_classes} classes"
            for name, info in DATASETS.items()
        },
    }
