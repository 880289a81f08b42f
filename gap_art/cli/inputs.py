"""What the commands on a user's model share: MODEL and its architecture (``--arch``,
``--arch-kwargs``), and the data it works on (``--dataset`` or ``--data``, ``--input-size``,
``--mean``, ``--std``), loaded one way for every command."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from gap_art.cli.options import CommaList, Decorator, data_dir_option, dataset_option, stack, user_errors


def data_options(help: str, model: str | None = "MODEL") -> Decorator:
    """The options that name a command's data, passed on as one ``data_spec``
    (:class:`~gap_art.data.DataSpec`): a built-in ``--dataset``, or your own files with ``--data``,
    resized by ``--input-size`` and normalised by ``--mean``/``--std`` as ART preprocessing.
    ``model``: the argument whose checkpoint records a default dataset (``None``: the command
    takes no model)."""
    default = f"the one {model} records, else digits" if model else "digits"
    options = stack(
        dataset_option(None, f"{help} A built-in dataset (default: {default})."),
        click.option(
            "--data",
            "data_path",
            type=click.Path(exists=True),
            help="Your own data: an ImageFolder folder (train/ and test/ or val/) or an .npz with "
            "x_train, y_train, x_test, y_test.",
        ),
        data_dir_option(),
        click.option("--input-size", type=click.IntRange(min=1), nargs=2, help="H W to resize images to."),
        click.option("--mean", type=CommaList(float), help="Per-channel normalisation mean (comma-list)."),
        click.option("--std", type=CommaList(float), help="Per-channel normalisation std (comma-list)."),
    )

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(command)
        def with_spec(**kwargs: Any) -> Any:
            from gap_art.data import DataSpec

            names = ("dataset", "data_path", "data_dir", "input_size", "mean", "std")
            values = {name: kwargs.pop(name) for name in names}
            with user_errors():
                kwargs["data_spec"] = DataSpec(
                    values["dataset"],
                    values["data_path"],
                    values["data_dir"],
                    tuple(values["input_size"]) if values["input_size"] else None,
                    tuple(values["mean"]) if values["mean"] else None,
                    tuple(values["std"]) if values["std"] else None,
                )
            return command(**kwargs)

        return options(with_spec)

    return decorate


def arch_option(help: str) -> Decorator:
    return stack(
        click.option("--arch", help=help),
        click.option(
            "--arch-kwargs",
            help="Keyword arguments of --arch as a JSON object, e.g. '{\"width\": 64}'.",
        ),
    )


def model_data(data_spec: Any, model_path: str | None, n_train: int | None = None, n_test: int | None = None,
               seed: int = 0) -> Any:  # fmt: skip
    """Load the data a command names (with MODEL's normalisation and input size), or else the
    data MODEL's checkpoint records; data MODEL cannot classify is a usage error."""
    from gap_art.checkpoint import checkpoint_info

    recorded = checkpoint_info(model_path) if model_path is not None else None
    spec = data_spec.or_recorded(recorded)
    data = spec.load(n_train, n_test, seed)
    spec.check_fits(data.info, recorded)
    return data


def user_model(model_path: str, info: Any, arch: str | None, arch_kwargs: str | None) -> tuple[Any, str]:
    """MODEL as ``(model, architecture)``: a checkpoint, or a state dict of ``--arch``."""
    from gap_art.checkpoint import load_model
    from gap_art.models import parse_arch_kwargs

    kwargs = parse_arch_kwargs(arch_kwargs) if arch_kwargs is not None else None
    return load_model(model_path, info, arch, kwargs)


def model_kwargs(model_path: str, arch_kwargs: str | None) -> dict[str, Any]:
    """The architecture's keyword arguments: ``--arch-kwargs``, else those a checkpoint records
    (none for a state dict)."""
    from gap_art.checkpoint import read_file
    from gap_art.models import parse_arch_kwargs

    if arch_kwargs is not None:
        return parse_arch_kwargs(arch_kwargs)
    payload = read_file(Path(model_path))
    return dict(payload.get("arch_kwargs", {})) if isinstance(payload, dict) else {}


def calibration_options(help: str) -> Decorator:
    """``--n-calibration`` and ``--seed`` of the int8 calibration subset, one default for every command."""
    return stack(
        click.option("--n-calibration", type=int, default=1000, show_default=True, help=help),
        click.option(
            "--seed", type=int, default=0, show_default=True, help="Seed of the calibration subset."
        ),
    )


ARCH_HELP = (
    "Architecture of a plain state_dict (a registry or torchvision name, timm:NAME, or your own "
    "package.module:Name); needed too to load a checkpoint of your own architecture."
)


def model_input(uses: str) -> Decorator:
    """The inputs every command on a user's model takes: MODEL (a gap-art checkpoint, or a plain
    state_dict with --arch), its architecture, and the data it was trained on (``data_spec``);
    ``uses`` says what this command does with that data, for its help."""
    return stack(
        click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False)),
        data_options(f"The data the model was trained on ({uses})."),
        arch_option(ARCH_HELP),
    )
