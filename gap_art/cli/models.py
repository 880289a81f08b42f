"""``gap-art train``, ``prune`` and ``quantize``: the commands about one model, a user's own included."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from gap_art.cli_options import LazyChoice, RegistryOption, as_flag, criteria, datasets


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
    help="A pruning criterion, optionally +iter (in rounds) and +tat or +gal (then hardened against "
    "examples transferred from MODEL), e.g. magnitude+tat.",
)
@click.option(
    "--compression", type=float, default=4.0, show_default=True, help="Prunable weights / weights kept."
)
@click.option(
    "--finetune-epochs",
    type=int,
    default=0,
    show_default=True,
    help="Fine-tuning epochs (the maximum); the hardening's epochs for +tat/+gal.",
)
@click.option(
    "--finetune-patience", type=int, help="Stop fine-tuning after this many epochs without progress."
)
@click.option("--prune-classifier", is_flag=True, help="Also prune the layer producing the logits.")
@click.option("--rounds", type=int, default=3, show_default=True, help="Rounds of +iter methods.")
@click.option("--eps", type=float, help="L-inf budget +tat/+gal harden against (default: the dataset's).")
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
    rounds: int,
    eps: float | None,
    n_calibration: int,
    seed: int,
    device: str,
    out: str,
) -> None:
    """Prune (and optionally harden) a trained model and save it as a gap-art checkpoint with
    its masks.

    MODEL is a gap-art checkpoint (gap-art train), or a plain state_dict file with --arch.

    \b
    Examples:
      gap-art prune model.pt --method gap-grad --compression 4 --finetune-epochs 10 --out pruned.pt
      gap-art prune weights.pt --arch lenet --dataset fashion-mnist --method magnitude --out pruned.pt
      gap-art prune model.pt --method magnitude+tat --finetune-epochs 5 --finetune-patience 1 --out hard.pt
    """
    from gap_art.checkpoint import load_model, save_checkpoint
    from gap_art.classifiers import to_art_classifier
    from gap_art.data import load_dataset
    from gap_art.defences.methods import apply_method
    from gap_art.models.registry import model_recipe
    from gap_art.training import RECIPES, evaluate_accuracy

    with user_errors():
        data = load_dataset(dataset, data_dir=data_dir)
        model, name = load_model(model_path, data.info, arch)
        classifier = to_art_classifier(model, data.info, device=device)
        optimizer = RECIPES[model_recipe(name)].optimizer
        pruning = {
            "finetune_epochs": finetune_epochs,
            "finetune_patience": finetune_patience,
            "finetune_optimizer": optimizer,
            "prune_classifier": prune_classifier,
            "nb_calibration": n_calibration,
            "rounds": rounds,
            "seed": seed,
        }
        hardening = {
            "eps": eps if eps is not None else data.info.eps,
            "epochs": max(1, finetune_epochs),
            "patience": finetune_patience,
            "optimizer": optimizer,
            "seed": seed,
        }
        x, y = data.numpy("train")
        result = apply_method(method, classifier, compression, x, y, x, y, pruning, hardening)
    before = evaluate_accuracy(model, data.test, device=device)
    after = evaluate_accuracy(result.classifier.model, data.test, device=device)
    epochs_run = sum(record.epochs_run for record in result.records)
    extra = {
        "method": method,
        "compression": result.report.compression,
        "excluded_layers": result.excluded_layers,
        "finetune_epochs_run": epochs_run,
        "test_accuracy": after,
    }
    path = save_checkpoint(Path(out), result.classifier.model, name, data.info, extra)
    click.echo(
        f"{method} at {compression:g}x: {result.report.compression:.2f}x achieved over the prunable weights "
        f"(left whole: {', '.join(result.excluded_layers) or 'none'}); fine-tuned {epochs_run} epoch(s), "
        f"kept epoch {result.records[-1].best_epoch} of the last stage; test accuracy {before:.4f} -> "
        f"{after:.4f}; saved {path}"
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
    --arch. The program loads back without gap-art: import torchao.quantization.pt2e (it
    registers the int8 operators), then torch.export.load(OUT).module().

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
