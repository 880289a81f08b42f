"""``gap-art export``: a (pruned) model as a file you can ship, masks folded in."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import click

from gap_art.cli.inputs import calibration_options, model_data, model_input, user_model
from gap_art.cli.options import report_health, user_errors

DATA_USE = (
    "read only for --format pt2 --int8, whose training split calibrates the int8 ranges, "
    "or to load a plain state_dict"
)
"""What ``export`` does with the data it is given, for its help."""


@click.command()
@model_input(DATA_USE)
@click.option(
    "--format",
    "file_format",
    type=click.Choice(["state_dict", "sparse", "pt2"]),
    default="sparse",
    show_default=True,
    help="state_dict (plain torch.save), sparse (safetensors: bitmask plus nonzero values) or pt2 "
    "(a torch.export program with its normalisation inside).",
)
@click.option(
    "--int8", is_flag=True, help="int8 weights: per-channel int8 values (sparse) or PT2E int8 (pt2)."
)
@calibration_options("Calibration images (pt2 --int8).")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="The file to write.")
def export(
    model_path: str,
    data_spec: Any,
    arch: str | None,
    arch_kwargs: str | None,
    file_format: str,
    int8: bool,
    n_calibration: int,
    seed: int,
    out: str,
) -> None:
    """Write MODEL (a gap-art checkpoint, or a state_dict with --arch) as a file to ship, its
    pruning masks folded in, and say how its size compares with the float32 state_dict. Only
    an int8 program reads data (to calibrate); a checkpoint's recorded shape does for the rest.

    \b
    Load each back:
      state_dict  model.load_state_dict(torch.load(OUT, weights_only=True))
      (a channel-pruned model: gap_art.pruning.structured.shrink_to(model, state) first)
      sparse      model.load_state_dict(gap_art.export.load_sparse(OUT))
      pt2         import torchao.quantization.pt2e; torch.export.load(OUT).module()

    \b
    Examples:
      gap-art export pruned.pt --format sparse --out pruned.safetensors
      gap-art export pruned.pt --format sparse --int8 --out pruned-int8.safetensors
      gap-art export pruned.pt --format pt2 --int8 --out pruned-int8.pt2
    """
    import torch

    from gap_art import export as files
    from gap_art.checkpoint import checkpoint_info
    from gap_art.runtime import seeded_subset

    if int8 and file_format == "state_dict":
        raise click.UsageError("--int8 applies to --format sparse and pt2; a state_dict is float32")
    with user_errors():
        recorded = checkpoint_info(model_path)
        named = data_spec.names_data or data_spec.mean is not None
        needs_data = (file_format == "pt2" and int8) or recorded is None or named
        data = model_data(data_spec, model_path, n_test=8, seed=seed) if needs_data else None
        info = data.info if data is not None else recorded
        assert info is not None  # a state dict (no record) always loads the data it names
        model, _ = user_model(model_path, info, arch, arch_kwargs)
        if file_format == "state_dict":
            path = files.save_state_dict(model, out)
        elif file_format == "sparse":
            path = files.save_sparse(model, out, int8=int8)
        else:
            calibration = None
            if data is not None and int8:
                train = data.numpy("train")[0]
                keep = seeded_subset(len(train), min(n_calibration, len(train)), seed)
                calibration = torch.from_numpy(train[keep])
            example = torch.zeros(2, *info.input_shape)
            path = files.save_pt2(model, out, example, info.preprocessing, calibration)
    dense = io.BytesIO()
    torch.save(files.folded(model).state_dict(), dense)
    size = Path(path).stat().st_size
    kind = f"{file_format}{' int8' if int8 else ''}"
    click.echo(
        f"{kind}: {size:,} bytes, {size / dense.getbuffer().nbytes:.3f} of the float32 state_dict "
        f"({dense.getbuffer().nbytes:,} bytes); saved {path}"
    )
    if int8:  # a new model: say what it lost against the float one, as prune and quantize do
        with user_errors():
            health = _int8_health(
                model, model_data(data_spec, model_path, seed=seed), Path(path), file_format
            )
        click.echo(f"int8: test accuracy {health.parent_accuracy:.4f} -> {health.accuracy:.4f}")
        report_health(health, path)


def _int8_health(model: Any, data: Any, path: Path, file_format: str) -> Any:
    """The int8 file's model against the float one on the test split: the program itself
    (pt2), or the weights rounded to int8 as the sparse file reloads them."""
    from gap_art import export as files
    from gap_art.classifiers import program_classifier, to_art_classifier
    from gap_art.evaluation.health import model_health

    parent = to_art_classifier(files.folded(model), data.info, device="cpu")
    if file_format == "pt2":
        int8 = program_classifier(path, data.info)
    else:
        int8 = to_art_classifier(files.quantize_weights(model), data.info, device="cpu")
    x, y = data.numpy("test")
    return model_health(parent, int8, x, y)
