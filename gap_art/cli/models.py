"""``gap-art train``, ``prune`` and ``quantize``: the commands about one model, a user's own included."""

from __future__ import annotations

from pathlib import Path

import click

from gap_art.cli.options import (
    RegistryOption,
    arch_option,
    criteria,
    data_dir_option,
    dataset_option,
    device_option,
    model_input,
    seed_option,
    user_errors,
)


@click.command()
@dataset_option()
@arch_option("Architecture (default: small-cnn for digits, lenet for 28x28, resnet20 for cifar10).")
@click.option("--model", "model_alias", hidden=True, help="Deprecated: --arch.")
@click.option(
    "--epochs", type=click.IntRange(min=0), default=None, help="Default: 30 (small CNNs) or 160 (ResNet/VGG)."
)
@seed_option("Seeds initialisation, data order and dropout.")
@device_option()
@data_dir_option()
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="Checkpoint file to write.")
def train(
    dataset: str,
    arch: str | None,
    model_alias: str | None,
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

    if model_alias is not None:
        click.echo("--model is deprecated: use --arch", err=True)
    with user_errors():
        data = load_dataset(dataset, data_dir=data_dir)
        name = arch or model_alias or {"digits": "small-cnn", "cifar10": "resnet20"}.get(dataset, "lenet")
        torch.manual_seed(seed)
        net = create_model(name, data.info.input_shape, data.info.nb_classes)
    recipe = model_recipe(name)
    n_epochs = epochs if epochs is not None else (30 if recipe == "adam" else 160)
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
@seed_option("Seeds calibration, tie-breaking, fine-tuning and the hardening.")
@device_option()
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
    from gap_art.defences.methods import apply_method, parse_method
    from gap_art.models.registry import model_recipe
    from gap_art.settings import FINETUNE_PARAMS, AttackSpec, FinetuneSpec
    from gap_art.training import evaluate_accuracy
    from gap_art.validation import params_named

    with user_errors():
        data = load_dataset(dataset, data_dir=data_dir)
        model, name = load_model(model_path, data.info, arch)
        classifier = to_art_classifier(model, data.info, device=device)
        with params_named(FINETUNE_PARAMS):
            finetune = FinetuneSpec(
                finetune_epochs, finetune_patience, optimizer=model_recipe(name), seed=seed
            )
        spec = parse_method(
            method,
            compression=compression,
            rounds=rounds,
            prune_classifier=prune_classifier,
            n_calibration=n_calibration,
            finetune=finetune,
            hardening_attack=AttackSpec(eps=eps if eps is not None else data.info.eps),
            seed=seed,
        )
        x, y = data.numpy("train")
        result = apply_method(spec, classifier, x, y, x, y)
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
