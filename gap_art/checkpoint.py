"""Save and load model checkpoints safely: atomic writes, ``weights_only`` loads, masks kept."""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gap_art.data import DatasetInfo
from gap_art.errors import ParameterError
from gap_art.models import create_model, is_import_path
from gap_art.pruning import load_masked_state
from gap_art.pruning.structured import shrink_to
from gap_art.runtime import atomic_write

CHECKPOINT_FORMAT = "gap-art-checkpoint"
CHECKPOINT_VERSION = 1


EXPECTED = "a gap-art checkpoint (gap-art train or prune) or a state_dict saved with torch.save"
"""What gap-art reads, named in every error about a file it cannot."""


class CheckpointError(ParameterError):
    """A file is not a readable gap-art checkpoint."""


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    model_name: str,
    info: DatasetInfo,
    extra: dict[str, Any] | None = None,
    arch_kwargs: Mapping[str, Any] | None = None,
) -> Path:
    """Write the model's state dict (masks included) with its architecture and dataset metadata.

    :param model_name: The architecture, as :func:`gap_art.models.create_model` takes it.
    :param extra: Plain values (numbers, strings, lists, dicts) to keep beside the weights.
    :param arch_kwargs: Keyword arguments the architecture was built with.
    """
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "model_name": model_name,
        "arch_kwargs": dict(arch_kwargs or {}),
        "dataset": info.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "extra": extra or {},
    }
    return atomic_write(path, lambda tmp: torch.save(payload, tmp))


def load_checkpoint(
    path: str | Path, arch: str | None = None
) -> tuple[nn.Module, DatasetInfo, dict[str, Any]]:
    """Rebuild the model of a checkpoint; pruning masks come back as ``prune`` masks, and a
    channel-pruned model (:class:`~gap_art.defences.StructuredPruning`) with its fewer channels.

    :param arch: Needed when the checkpoint's architecture is your own code
        (``package.module:Name``): gap-art imports code only when you name it.
    :return: ``(model in eval mode, dataset metadata, extra)``.
    :raises CheckpointError: Missing, corrupt or foreign file.
    """
    payload = _validated(read_file(Path(path)), Path(path))
    return _from_payload(payload, path, arch, None)


def _from_payload(
    payload: dict[str, Any], path: str | Path, arch: str | None, arch_kwargs: Mapping[str, Any] | None
) -> tuple[nn.Module, DatasetInfo, dict[str, Any]]:
    name = str(payload.get("model_name"))
    if is_import_path(name) and arch != name:
        raise CheckpointError(
            f"checkpoint {path} was saved from your own architecture {name!r}, which gap-art imports "
            f"only when you name it: pass --arch {name} (arch=)"
        )
    try:
        info = DatasetInfo.from_dict(payload["dataset"])
        kwargs = arch_kwargs if arch_kwargs is not None else payload.get("arch_kwargs", {})
        model = create_model(name, info.input_shape, info.nb_classes, kwargs)
        shrink_to(model, payload["state_dict"])  # a channel-pruned model: its layers' sizes
        load_masked_state(model, payload["state_dict"])
    except (KeyError, TypeError, RuntimeError, ValueError) as error:
        raise CheckpointError(
            f"checkpoint {path} does not fit its architecture {name!r}: {_line(error)}"
        ) from None
    return model.eval(), info, dict(payload.get("extra", {}))


def load_model(
    path: str | Path,
    info: DatasetInfo | None = None,
    arch: str | None = None,
    arch_kwargs: Mapping[str, Any] | None = None,
) -> tuple[nn.Module, str]:
    """A user's trained model: a gap-art checkpoint, or a plain ``state_dict`` file of the
    architecture ``arch`` for the dataset ``info`` describes. Loaded with ``weights_only=True``;
    pruning masks in either come back as ``prune`` masks.

    :param info: The data the model must fit; a checkpoint's recorded dataset by default.
    :param arch: Architecture of a state dict (any name :func:`gap_art.models.create_model`
        takes), and the confirmation gap-art needs to import a checkpoint's own-code architecture.
    :param arch_kwargs: Keyword arguments of ``arch`` (a checkpoint's recorded ones by default).
    :return: ``(model in eval mode, its architecture name)``.
    :raises CheckpointError: Missing, corrupt or foreign file, a state dict without ``arch`` or
        ``info``, or weights that do not fit the architecture or the dataset.
    """
    payload = read_file(Path(path))
    if isinstance(payload, dict) and payload.get("format") == CHECKPOINT_FORMAT:
        model, saved, _ = _from_payload(_validated(payload, Path(path)), path, arch, arch_kwargs)
        if info is not None and (tuple(saved.input_shape), saved.nb_classes) != (
            tuple(info.input_shape),
            info.nb_classes,
        ):
            raise CheckpointError(
                f"checkpoint {path} is for inputs {tuple(saved.input_shape)} and {saved.nb_classes} classes, "
                f"the dataset has {tuple(info.input_shape)} and {info.nb_classes}"
            )
        return model, str(payload["model_name"])
    if not isinstance(payload, dict) or not all(isinstance(v, torch.Tensor) for v in payload.values()):
        raise CheckpointError(
            f"{path} holds neither a gap-art checkpoint nor a state_dict of tensors: expected {EXPECTED}"
        )
    if arch is None or info is None:
        raise CheckpointError(
            f"{path} is a plain state_dict: name its architecture with --arch (arch=) and its data "
            "with --dataset or --data (info=)"
        )
    try:
        model = create_model(arch, info.input_shape, info.nb_classes, arch_kwargs)
        load_masked_state(model, payload)
    except (KeyError, TypeError, RuntimeError, ValueError) as error:
        raise CheckpointError(f"{path} does not fit {arch} for {info.name}: {_line(error)}") from None
    return model.eval(), arch


def checkpoint_info(path: str | Path) -> DatasetInfo | None:
    """The dataset a gap-art checkpoint records (``None`` for a plain state dict), so that
    commands default to the data the model was trained on."""
    payload = read_file(Path(path))
    if isinstance(payload, dict) and payload.get("format") == CHECKPOINT_FORMAT:
        try:
            return DatasetInfo.from_dict(_validated(payload, Path(path))["dataset"])
        except (KeyError, TypeError, ValueError, IndexError) as error:
            raise CheckpointError(
                f"checkpoint {path} has no readable dataset record: {_line(error)}"
            ) from None
    return None


def read_file(path: Path) -> Any:
    """``torch.load(path, weights_only=True)`` with every failure (unpickling, a foreign or
    truncated archive, a file of another kind) as one :class:`CheckpointError` line that says
    what the file is not; never PyTorch's advice to load with ``weights_only=False``."""
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist: expected {EXPECTED}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any reader failure means the file is not one
        if isinstance(error, pickle.UnpicklingError) and "GLOBAL" in str(error):
            raise CheckpointError(
                f"{path} holds Python objects other than tensors and plain values, which gap-art "
                f"refuses to load: expected {EXPECTED}"
            ) from None
        raise CheckpointError(
            f"{path} is not a readable PyTorch file ({type(error).__name__}): expected {EXPECTED}"
        ) from None


def _line(error: Exception) -> str:
    """The first line of an error message, trimmed: errors here are one line."""
    text = str(error).strip().splitlines()
    return text[0][:300] if text else type(error).__name__


def _validated(payload: Any, path: Path) -> dict[str, Any]:
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} is not a gap-art checkpoint (no {CHECKPOINT_FORMAT!r} tag): expected {EXPECTED}"
        )
    if payload.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint version {payload.get('version')}, "
            f"this gap-art reads version {CHECKPOINT_VERSION}"
        )
    return payload
