"""``gap-art train``, ``prune`` and ``quantize``: the commands about one model, a user's own included."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gap_art.cli.inputs import (
    arch_option,
    calibration_options,
    data_options,
    model_data,
    model_input,
    model_kwargs,
    user_model,
)
from gap_art.cli.options import (
    RegistryOption,
    criteria,
    device_option,
    report_health,
    seed_option,
    user_errors,
)
from gap_art.errors import ParameterError
from gap_art.settings import CONVERGENCE

if TYPE_CHECKING:
    pass

DEFAULT_ARCH = {(8, 8): "small-cnn", (28, 28): "lenet", (32, 32): "resnet20"}
"""The architecture ``gap-art train`` picks by image size when ``--arch`` is not given."""


def default_arch(input_shape: tuple[int, ...]) -> str:
    """The registry model for images of ``input_shape``; other sizes must name ``--arch``."""
    name = DEFAULT_ARCH.get((int(input_shape[1]), int(input_shape[2])))
    if name is None:
        raise ParameterError(f"arch: no default for {tuple(input_shape)} images; name one with --arch")
    return name


@click.command()
@data_options("The data to train on.", model=None)
@arch_option("Architecture (default: small-cnn for 8x8, lenet for 28x28, resnet20 for 32x32 images).")
@click.option("--model", "model_alias", hidden=True, help="Deprecated: --arch.")
@click.option(
    "--epochs", type=click.IntRange(min=0), default=None, help="Default: 30 (small CNNs) or 160 (ResNet/VGG)."
)
@seed_option("Seeds initialisation, data order and dropout.")
@device_option()
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="Checkpoint file to write.")
def train(
    data_spec: Any,
    arch: str | None,
    arch_kwargs: str | None,
    model_alias: str | None,
    epochs: int | None,
    seed: int,
    device: str,
    out: str,
) -> None:
    """Train a model and save a checkpoint (loadable with gap_art.checkpoint.load_model).

    \b
    Examples:
      gap-art train --dataset fashion-mnist --epochs 5 --out model.pt
      gap-art train --data images/ --input-size 32 32 --arch mymodels:Net --out model.pt
    """
    import torch

    from gap_art.checkpoint import save_checkpoint
    from gap_art.classifiers import pixel_space
    from gap_art.evaluation.health import majority_rate
    from gap_art.models import create_model, parse_arch_kwargs
    from gap_art.models.registry import model_recipe
    from gap_art.training import RECIPES, evaluate_accuracy, train_model

    if model_alias is not None:
        click.echo("--model is deprecated: use --arch", err=True)
    with user_errors():
        data = data_spec.load()
        name = arch or model_alias or default_arch(data.info.input_shape)
        kwargs = parse_arch_kwargs(arch_kwargs)
        torch.manual_seed(seed)
        net = create_model(name, data.info.input_shape, data.info.nb_classes, kwargs)
    recipe = model_recipe(name)
    n_epochs = epochs if epochs is not None else (30 if recipe == "adam" else 160)
    train_model(pixel_space(net, data.info), data.train, n_epochs, RECIPES[recipe], seed, device)
    accuracy = evaluate_accuracy(pixel_space(net, data.info), data.test, device=device)
    extra = {"epochs": n_epochs, "seed": seed, "test_accuracy": accuracy}
    path = save_checkpoint(Path(out), net, name, data.info, extra, kwargs)
    click.echo(f"{name} on {data_spec.describe()}: test accuracy {accuracy:.4f}; saved {path}")
    chance = majority_rate(data.numpy("test")[1])
    if accuracy <= chance:  # a model that learnt nothing is no success
        click.echo(
            f"warning: test accuracy {accuracy:.4f} is at chance (always answering the most frequent "
            f"class scores {chance:.4f}): try other --epochs, or check the data",
            err=True,
        )
        click.echo(f"the model is saved at {path}, but it does not classify: exit 1", err=True)
        raise SystemExit(1)


@click.command()
@model_input("its training split calibrates and fine-tunes, its test split scores")
@click.option(
    "--method",
    default="gap-grad",
    show_default=True,
    cls=RegistryOption,
    names=criteria,
    help="A pruning criterion, optionally /channel (whole channels), +iter (in rounds) and +tat or +gal "
    "(then hardened against examples transferred from MODEL), e.g. magnitude+tat, gap-grad/channel.",
)
@click.option(
    "--compression", type=float, default=4.0, show_default=True, help="Prunable weights / weights kept."
)
@click.option(
    "--finetune-epochs",
    type=click.IntRange(min=0),
    default=CONVERGENCE.epochs,
    show_default=True,
    help="Fine-tuning epochs after pruning, the most with --finetune-patience (0: none); the "
    "hardening's epochs for +tat/+gal.",
)
@click.option(
    "--finetune-patience",
    type=click.IntRange(min=0),
    default=CONVERGENCE.patience,
    show_default=True,
    help="Stop fine-tuning after this many epochs without a better accuracy on a held-out tenth of "
    "the training data and keep the best epoch (0: train every epoch).",
)
@click.option("--prune-classifier", is_flag=True, help="Also prune the layer producing the logits.")
@click.option("--rounds", type=int, default=3, show_default=True, help="Rounds of +iter methods.")
@click.option("--eps", type=float, help="L-inf budget +tat/+gal harden against (default: the dataset's).")
@click.option("--n-calibration", type=int, default=512, show_default=True, help="Calibration examples.")
@click.option(
    "--keep-masks",
    is_flag=True,
    help="Keep the pruning masks (weight_orig, weight_mask) for further pruning or fine-tuning; "
    "by default they are folded into the weights (prune.remove), which is smaller.",
)
@click.option(
    "--structure",
    type=click.Choice(["weights", "channel"]),
    default="weights",
    show_default=True,
    help="weights: zero single weights (irregular, the paper's); channel: remove whole channels "
    "and neurons, a smaller model that runs faster (--method random, l1, l2, magnitude, taylor or GAP's "
    "gap-grad, gap-taylor, gap-abs_grad summed per channel; the same as naming the method l2/channel).",
)
@seed_option("Seeds calibration, tie-breaking, fine-tuning and the hardening.")
@device_option()
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="Checkpoint file to write.")
def prune(
    model_path: str,
    method: str,
    compression: float,
    data_spec: Any,
    arch: str | None,
    arch_kwargs: str | None,
    finetune_epochs: int,
    finetune_patience: int | None,
    prune_classifier: bool,
    rounds: int,
    eps: float | None,
    n_calibration: int,
    keep_masks: bool,
    structure: str,
    seed: int,
    device: str,
    out: str,
) -> None:
    """Prune (and optionally harden) a trained model, fine-tune it to convergence (as the bench
    does; --finetune-epochs 0 to skip) and save it as a gap-art checkpoint, masks folded into
    the weights (or kept, with --keep-masks); gap-art export ships it.

    MODEL is a gap-art checkpoint (gap-art train), or a plain state_dict file with --arch.

    \b
    Examples:
      gap-art prune model.pt --method gap-grad --compression 4 --out pruned.pt
      gap-art prune weights.pt --arch lenet --dataset fashion-mnist --method magnitude --out pruned.pt
      gap-art prune model.pt --arch mymodels:Net --method magnitude --out pruned.pt
      gap-art prune model.pt --method magnitude+tat --finetune-epochs 5 --finetune-patience 1 --out hard.pt
      gap-art prune model.pt --structure channel --method l2 --compression 2 --out small.pt
    """
    from gap_art.checkpoint import save_checkpoint
    from gap_art.classifiers import to_art_classifier
    from gap_art.defences.methods import apply_method, parse_method
    from gap_art.evaluation.health import model_health
    from gap_art.models.registry import model_recipe
    from gap_art.pruning import make_permanent
    from gap_art.pruning.structured import ChannelReport
    from gap_art.settings import CHANNEL, FINETUNE_PARAMS, AttackSpec, FinetuneSpec
    from gap_art.validation import params_named

    with user_errors():
        data = model_data(data_spec, model_path)
        model, name = user_model(model_path, data.info, arch, arch_kwargs)
        kwargs = model_kwargs(model_path, arch_kwargs)
        classifier = to_art_classifier(model, data.info, device=device)
        with params_named(FINETUNE_PARAMS):
            patience = finetune_patience or None  # 0: every epoch
            finetune = FinetuneSpec(finetune_epochs, patience, optimizer=model_recipe(name), seed=seed)
        spec = parse_method(
            method,
            compression=compression,
            rounds=rounds,
            prune_classifier=prune_classifier,
            n_calibration=n_calibration,
            finetune=finetune,
            hardening_attack=AttackSpec(eps=eps if eps is not None else data.info.eps),
            seed=seed,
            structure=structure,
        )
        if spec.structure == CHANNEL and (prune_classifier or keep_masks):
            raise click.UsageError("--prune-classifier and --keep-masks do not apply to --structure channel")
        x, y = data.numpy("train")
        result = apply_method(spec, classifier, x, y, x, y)
    x_test, y_test = data.numpy("test")
    health = model_health(classifier, result.classifier, x_test, y_test)
    before, after = health.parent_accuracy, health.accuracy
    pruned = result.classifier.model if keep_masks else make_permanent(result.classifier.model)
    epochs_run = sum(record.epochs_run for record in result.records)
    report, epochs_run = result.report, sum(record.epochs_run for record in result.records)
    extra = {
        "method": spec.name,
        "compression": report.compression,
        "excluded_layers": result.excluded_layers,
        "finetune_epochs_run": epochs_run,
        "test_accuracy": after,
        "masks": "kept" if keep_masks else "folded",
    }
    if isinstance(report, ChannelReport):
        extra["macs_reduction"] = report.macs_reduction
    path = save_checkpoint(Path(out), pruned, name, data.info, extra, kwargs)
    click.echo(
        f"{spec.name} at {compression:g}x: {_achieved(report)} (left whole: "
        f"{', '.join(result.excluded_layers) or 'none'}); fine-tuned {epochs_run} epoch(s), kept epoch "
        f"{result.records[-1].best_epoch} of the last stage; test accuracy {before:.4f} -> {after:.4f}; "
        f"saved {path}"
    )
    report_health(health, path)


@click.command()
@model_input("its training split calibrates the int8 ranges, its test split scores")
@click.option("--backend", type=click.Choice(["x86", "xnnpack"]), default="x86", show_default=True)
@calibration_options("Calibration examples.")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="The .pt2 program to write.")
def quantize(
    model_path: str,
    data_spec: Any,
    arch: str | None,
    arch_kwargs: str | None,
    backend: str,
    n_calibration: int,
    seed: int,
    out: str,
) -> None:
    """Quantize a (pruned) model to int8, report its test accuracy, and save it as a
    torch.export program that takes pixel-space inputs (its normalisation inside).

    MODEL is a gap-art checkpoint (gap-art train or prune), or a plain state_dict file with
    --arch. The program loads back without gap-art: import torchao.quantization.pt2e (it
    registers the int8 operators), then torch.export.load(OUT).module().

    \b
    Example:
      gap-art quantize pruned.pt --out model-int8.pt2
    """
    import torch

    from gap_art.classifiers import to_art_classifier
    from gap_art.defences import Int8Quantization
    from gap_art.evaluation.health import model_health
    from gap_art.export import Standardize
    from gap_art.quantization import save_program

    with user_errors():
        data = model_data(data_spec, model_path)
        model, _ = user_model(model_path, data.info, arch, arch_kwargs)
        quantizer = Int8Quantization(
            to_art_classifier(model, data.info, device="cpu"), backend, n_calibration, seed=seed
        )
        int8 = quantizer(data.numpy("train")[0])
    x, y = data.numpy("test")
    health = model_health(quantizer.classifier, int8, x, y)
    before, after = health.parent_accuracy, health.accuracy
    program = int8.quantized_model
    if data.info.preprocessing is not None:
        program = torch.nn.Sequential(Standardize(*data.info.preprocessing), program)
    path = save_program(program, torch.from_numpy(x[:2]), Path(out))
    click.echo(f"int8 ({backend}): test accuracy {before:.4f} -> {after:.4f}; saved {path}")
    report_health(health, path)


def _achieved(report: Any) -> str:
    """What a pruning achieved, in words: over the prunable weights, or by channel."""
    from gap_art.pruning.structured import ChannelReport

    if not isinstance(report, ChannelReport):
        return f"{report.compression:.2f}x achieved over the prunable weights"
    return (
        f"{report.parameters_before:,} -> {report.parameters_after:,} parameters "
        f"({report.compression:.2f}x), {report.macs_reduction:.2f}x fewer multiply-adds"
    )
