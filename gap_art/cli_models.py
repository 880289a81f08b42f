"""``gap-art train`` and ``gap-art prune``: the commands about one model, a user's own included."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from gap_art.cli_options import LazyChoice, RegistryOption, as_flag, attacks, criteria, datasets


def model_input(command: Callable[..., Any]) -> Callable[..., Any]:
    """The inputs every command on a user's model takes: MODEL (a gap-art checkpoint, or a plain
    state_dict with --arch), the dataset it was trained on, and where that dataset is read from."""
    options = [
        click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False)),
        click.option(
            "--dataset",
            type=LazyChoice(datasets),
            default="digits",
            show_default=True,
            help="The data the model was trained on (its training split calibrates and fine-tunes).",
        ),
        click.option(
            "--arch", help="Architecture of a plain state_dict file (a registry or torchvision name)."
        ),
        click.option("--data-dir", type=click.Path(file_okay=False), help="Where datasets are read from."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Loading a user's model and data: missing data is an error (exit 1) that says how to get
    it; a foreign file or a bad setting is a usage error (exit 2) naming the flag."""
    from gap_art.checkpoint import CheckpointError
    from gap_art.data import DataUnavailableError
    from gap_art.quantization import QuantizationError

    try:
        yield
    except DataUnavailableError as error:
        raise click.ClickException(str(error)) from None
    except (CheckpointError, QuantizationError, ValueError) as error:
        raise click.UsageError(as_flag(str(error))) from None


@click.command()
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
    from gap_art.data import load_dataset
    from gap_art.models import create_model
    from gap_art.models.registry import model_recipe
    from gap_art.training import RECIPES, evaluate_accuracy, train_model

    with user_errors():
        data = load_dataset(dataset, data_dir=data_dir)
        name = model or {"digits": "small-cnn", "cifar10": "resnet20"}.get(dataset, "lenet")
        torch.manual_seed(seed)
        net = create_model(name, data.info.input_shape, data.info.nb_classes)
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


@click.command()
@model_input
@click.option(
    "--method",
    default="gap-grad",
    show_default=True,
    cls=RegistryOption,
    names=criteria,
    help="Pruning criterion.",
)
@click.option(
    "--compression", type=float, default=4.0, show_default=True, help="Prunable weights / weights kept."
)
@click.option(
    "--finetune-epochs", type=int, default=0, show_default=True, help="Fine-tuning epochs (the maximum)."
)
@click.option(
    "--finetune-patience", type=int, help="Stop fine-tuning after this many epochs without progress."
)
@click.option("--prune-classifier", is_flag=True, help="Also prune the layer producing the logits.")
@click.option("--n-calibration", type=int, default=512, show_default=True, help="Calibration examples.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="Checkpoint file to write.")
def prune(
    model_path: str,
    method: str,
    compression: float,
    dataset: str,
    arch: str | None,
    data_dir: str | None,
    finetune_epochs: int,
    finetune_patience: int | None,
    prune_classifier: bool,
    n_calibration: int,
    seed: int,
    device: str,
    out: str,
) -> None:
    """Prune a trained model and save it as a gap-art checkpoint with its masks.

    MODEL is a gap-art checkpoint (gap-art train), or a plain state_dict file with --arch.

    \b
    Examples:
      gap-art prune model.pt --method gap-grad --compression 4 --finetune-epochs 10 --out pruned.pt
      gap-art prune weights.pt --arch lenet --dataset fashion-mnist --method magnitude --out pruned.pt
    """
    from gap_art.checkpoint import load_model, save_checkpoint
    from gap_art.classifiers import to_art_classifier
    from gap_art.data import load_dataset
    from gap_art.defences import pruning_defence
    from gap_art.models.registry import model_recipe
    from gap_art.training import RECIPES, evaluate_accuracy

    with user_errors():
        data = load_dataset(dataset, data_dir=data_dir)
        model, name = load_model(model_path, data.info, arch)
        classifier = to_art_classifier(model, data.info, device=device)
        defence = pruning_defence(
            classifier,
            method,
            compression,
            finetune_epochs=finetune_epochs,
            finetune_patience=finetune_patience,
            finetune_optimizer=RECIPES[model_recipe(name)].optimizer,
            prune_classifier=prune_classifier,
            nb_calibration=n_calibration,
            seed=seed,
        )
    x, y = data.numpy("train")
    pruned = defence(x, y=y)
    before = evaluate_accuracy(model, data.test, device=device)
    after = evaluate_accuracy(pruned.model, data.test, device=device)
    report, record = defence.compression_report_, defence.finetune_record_
    assert report is not None and record is not None
    extra = {
        "method": method,
        "compression": report.compression,
        "excluded_layers": defence.excluded_layers_,
        "finetune_epochs_run": record.epochs_run,
        "test_accuracy": after,
    }
    path = save_checkpoint(Path(out), pruned.model, name, data.info, extra)
    click.echo(
        f"{method} at {compression:g}x: {report.compression:.2f}x achieved over the prunable weights "
        f"(left whole: {', '.join(defence.excluded_layers_) or 'none'}); fine-tuned {record.epochs_run} "
        f"epoch(s), kept epoch {record.best_epoch}; test accuracy {before:.4f} -> {after:.4f}; saved {path}"
    )


@click.command()
@model_input
@click.option("--backend", type=click.Choice(["x86", "xnnpack"]), default="x86", show_default=True)
@click.option("--n-calibration", type=int, default=1000, show_default=True, help="Calibration examples.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the calibration subset.")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="The .pt2 program to write.")
def quantize(
    model_path: str,
    dataset: str,
    arch: str | None,
    data_dir: str | None,
    backend: str,
    n_calibration: int,
    seed: int,
    out: str,
) -> None:
    """Quantize a (pruned) model to int8 and save it as a torch.export program.

    MODEL is a gap-art checkpoint (gap-art train or prune), or a plain state_dict file with
    --arch. The program loads back with torch.export.load(OUT).module(), without gap-art.

    \b
    Example:
      gap-art quantize pruned.pt --dataset fashion-mnist --out model-int8.pt2
    """
    import torch

    from gap_art.checkpoint import load_model
    from gap_art.classifiers import to_art_classifier
    from gap_art.data import load_dataset
    from gap_art.defences import Int8Quantization
    from gap_art.quantization import save_program

    with user_errors():
        data = load_dataset(dataset, data_dir=data_dir)
        model, _ = load_model(model_path, data.info, arch)
        quantizer = Int8Quantization(
            to_art_classifier(model, data.info, device="cpu"), backend, n_calibration, seed=seed
        )
        int8 = quantizer(data.numpy("train")[0])
    x, y = data.numpy("test")
    before = float((quantizer.classifier.predict(x).argmax(1) == y).mean())
    after = float((int8.predict(x).argmax(1) == y).mean())
    path = save_program(int8.quantized_model, torch.from_numpy(x[:2]), Path(out))
    click.echo(f"int8 ({backend}): test accuracy {before:.4f} -> {after:.4f}; saved {path}")


def _target_model(spec: str, info: Any, arch: str | None) -> tuple[str, Any]:
    """``NAME=PATH`` as an ART classifier: a checkpoint or state dict (differentiable), or a
    ``.pt2`` program (int8 or not), queried through ``predict`` alone."""
    import numpy as np
    import torch
    from art.estimators.classification import BlackBoxClassifier

    from gap_art.checkpoint import load_model
    from gap_art.classifiers import to_art_classifier
    from gap_art.quantization import load_program

    name, sep, path = spec.partition("=")
    if not sep or not name or not path:
        raise click.BadParameter(f"expected NAME=PATH, got {spec!r}", param_hint="--target")
    if path.endswith(".pt2"):
        program = load_program(path)

        def predict(x: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return program(torch.from_numpy(np.asarray(x, dtype=np.float32))).numpy()

        return name, BlackBoxClassifier(
            predict, tuple(info.input_shape), info.nb_classes, clip_values=info.clip_values
        )
    model, _ = load_model(path, info, arch)
    return name, to_art_classifier(model, info, device="cpu")


@click.command()
@click.option(
    "--source",
    "source_path",
    type=click.Path(dir_okay=False),
    required=True,
    help="The model the attacker holds (a checkpoint, or a state_dict with --arch).",
)
@click.option(
    "--target",
    "targets",
    multiple=True,
    required=True,
    help="NAME=PATH of a target: a checkpoint, a state_dict (--arch) or a .pt2 program; repeatable.",
)
@click.option("--dataset", type=LazyChoice(datasets), default="digits", show_default=True)
@click.option("--arch", help="Architecture of plain state_dict files (a registry or torchvision name).")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Where datasets are read from.")
@click.option(
    "--attacks",
    default="pgd",
    show_default=True,
    cls=RegistryOption,
    names=attacks,
    help="Attacks crafted on the source, comma-separated.",
)
@click.option("--eps", type=float, help="L-inf budget (default: the dataset's).")
@click.option("--n-test", type=int, help="Test examples, a seeded subset (default: the whole test split).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(file_okay=False), help="Folder for results.json and results.csv.")
def evaluate(
    source_path: str,
    targets: tuple[str, ...],
    dataset: str,
    arch: str | None,
    data_dir: str | None,
    attacks: str,
    eps: float | None,
    n_test: int | None,
    seed: int,
    out: str | None,
) -> None:
    """Craft attacks on a source model and measure how well they transfer to each target.

    \b
    Example:
      gap-art evaluate --source model.pt --target gap=pruned.pt --target int8=model-int8.pt2 \\
          --dataset fashion-mnist --attacks pgd,cw --eps 0.15 --out runs/mine
    """
    from gap_art.checkpoint import load_model
    from gap_art.classifiers import to_art_classifier
    from gap_art.data import load_dataset
    from gap_art.evaluation import evaluate_transfer, format_table, to_csv, to_json

    with user_errors():
        data = load_dataset(dataset, data_dir=data_dir, n_test=n_test, seed=seed)
        source = to_art_classifier(load_model(source_path, data.info, arch)[0], data.info, device="cpu")
        named = dict(_target_model(spec, data.info, arch) for spec in targets)
    x, y = data.numpy("test")
    budget = eps if eps is not None else data.info.eps
    results = []
    try:
        for attack in [a.strip() for a in attacks.split(",") if a.strip()]:
            results += evaluate_transfer(source, named, x, y, attack, eps=budget, seed=seed, progress=False)
    except (ValueError, TypeError) as error:
        raise click.UsageError(str(error)) from None
    click.echo(format_table(results))
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        to_json(results, Path(out) / "results.json")
        to_csv(results, Path(out) / "results.csv")
        click.echo(f"\nwrote {Path(out) / 'results.json'} and results.csv")
