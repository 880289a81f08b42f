"""``gap-art train`` and ``gap-art prune``: the commands about one model, a user's own included."""

from __future__ import annotations

from pathlib import Path

import click

from gap_art.cli_options import LazyChoice, RegistryOption, criteria, datasets


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


@click.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False))
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
    "--dataset",
    type=LazyChoice(datasets),
    default="digits",
    show_default=True,
    help="The data the model was trained on: calibration and fine-tuning use its training split.",
)
@click.option("--arch", help="Architecture of a plain state_dict file (a registry or torchvision name).")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Where datasets are read from.")
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
    from gap_art.checkpoint import CheckpointError, load_model, save_checkpoint
    from gap_art.classifiers import to_art_classifier
    from gap_art.data import DataUnavailableError, load_dataset
    from gap_art.defences import pruning_defence
    from gap_art.models.registry import model_recipe
    from gap_art.training import RECIPES, evaluate_accuracy

    try:
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
    except DataUnavailableError as error:
        raise click.ClickException(str(error)) from None
    except (CheckpointError, ValueError) as error:
        raise click.UsageError(str(error)) from None
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
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False))
@click.option(
    "--dataset",
    type=LazyChoice(datasets),
    default="digits",
    show_default=True,
    help="The data the model was trained on: int8 calibration uses its training split.",
)
@click.option("--arch", help="Architecture of a plain state_dict file (a registry or torchvision name).")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Where datasets are read from.")
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

    from gap_art.checkpoint import CheckpointError, load_model
    from gap_art.classifiers import to_art_classifier
    from gap_art.data import DataUnavailableError, load_dataset
    from gap_art.defences import Int8Quantization
    from gap_art.quantization import QuantizationError, save_program

    try:
        data = load_dataset(dataset, data_dir=data_dir)
        model, _ = load_model(model_path, data.info, arch)
        quantizer = Int8Quantization(
            to_art_classifier(model, data.info, device="cpu"), backend, n_calibration, seed=seed
        )
        int8 = quantizer(data.numpy("train")[0])
    except DataUnavailableError as error:
        raise click.ClickException(str(error)) from None
    except (CheckpointError, QuantizationError, ValueError) as error:
        raise click.UsageError(str(error)) from None
    x, y = data.numpy("test")
    before = float((quantizer.classifier.predict(x).argmax(1) == y).mean())
    after = float((int8.predict(x).argmax(1) == y).mean())
    path = save_program(int8.quantized_model, torch.from_numpy(x[:2]), Path(out))
    click.echo(f"int8 ({backend}): test accuracy {before:.4f} -> {after:.4f}; saved {path}")
