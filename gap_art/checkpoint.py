"""Save and load model checkpoints safely: atomic writes, ``weights_only`` loads, masks kept."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gap_art.data import DatasetInfo
from gap_art.models import create_model
from gap_art.pruning import load_masked_state
from gap_art.runtime import atomic_write

CHECKPOINT_FORMAT = "gap-art-checkpoint"
CHECKPOINT_VERSION = 1


class CheckpointError(ValueError):
    """A file is not a readable gap-art checkpoint."""


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    model_name: str,
    info: DatasetInfo,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write the model's state dict (masks included) with its name and dataset metadata.

    :param extra: Plain values (numbers, strings, lists, dicts) to keep beside the weights.
    """
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "model_name": model_name,
        "dataset": info.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "extra": extra or {},
    }
    return atomic_write(path, lambda tmp: torch.save(payload, tmp))


def load_checkpoint(path: str | Path) -> tuple[nn.Module, DatasetInfo, dict[str, Any]]:
    """Rebuild the model of a checkpoint; pruning masks come back as ``prune`` masks.

    :return: ``(model in eval mode, dataset metadata, extra)``.
    :raises CheckpointError: Missing, corrupt or foreign file.
    """
    return _from_payload(_validated(_load(Path(path)), Path(path)), path)


def _from_payload(payload: dict[str, Any], path: str | Path) -> tuple[nn.Module, DatasetInfo, dict[str, Any]]:
    try:
        info = DatasetInfo.from_dict(payload["dataset"])
        model = create_model(payload["model_name"], info.input_shape, info.nb_classes)
        load_masked_state(model, payload["state_dict"])
    except (KeyError, TypeError, RuntimeError, ValueError) as error:
        raise CheckpointError(f"checkpoint {path} does not match its model: {error}") from error
    return model.eval(), info, dict(payload.get("extra", {}))


def load_model(path: str | Path, info: DatasetInfo, arch: str | None = None) -> tuple[nn.Module, str]:
    """A user's trained model: a gap-art checkpoint, or a plain ``state_dict`` file of the
    architecture ``arch`` (a registry or torchvision name) for the dataset ``info`` describes.
    Loaded with ``weights_only=True``; pruning masks in either come back as ``prune`` masks.

    :return: ``(model in eval mode, its architecture name)``.
    :raises CheckpointError: Missing, corrupt or foreign file, a state dict without ``arch``, or
        weights that do not fit the architecture or the dataset.
    """
    payload = _load(Path(path))
    if isinstance(payload, dict) and payload.get("format") == CHECKPOINT_FORMAT:
        model, saved, _ = _from_payload(_validated(payload, Path(path)), path)
        if (tuple(saved.input_shape), saved.nb_classes) != (tuple(info.input_shape), info.nb_classes):
            raise CheckpointError(
                f"checkpoint {path} is for inputs {tuple(saved.input_shape)} and {saved.nb_classes} classes, "
                f"the dataset has {tuple(info.input_shape)} and {info.nb_classes}"
            )
        return model, str(payload["model_name"])
    if arch is None:
        raise CheckpointError(
            f"{path} is not a gap-art checkpoint: name its architecture with --arch (arch=)"
        )
    if not isinstance(payload, dict) or not all(isinstance(v, torch.Tensor) for v in payload.values()):
        raise CheckpointError(f"{path} is neither a gap-art checkpoint nor a state_dict of tensors")
    try:
        model = create_model(arch, info.input_shape, info.nb_classes)
        load_masked_state(model, payload)
    except (KeyError, TypeError, RuntimeError, ValueError) as error:
        raise CheckpointError(f"{path} does not fit {arch} for {info.name}: {error}") from error
    return model.eval(), arch


def _load(path: Path) -> Any:
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError, OSError) as error:
        raise CheckpointError(f"{path} is not a readable checkpoint: {error}") from error


def _validated(payload: Any, path: Path) -> dict[str, Any]:
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a gap-art checkpoint (no {CHECKPOINT_FORMAT!r} tag)")
    if payload.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint version {payload.get('version')}, "
            f"this gap-art reads version {CHECKPOINT_VERSION}"
        )
    return payload
