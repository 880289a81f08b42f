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
    payload = _read(Path(path))
    try:
        info = DatasetInfo.from_dict(payload["dataset"])
        model = create_model(payload["model_name"], info.input_shape, info.nb_classes)
        load_masked_state(model, payload["state_dict"])
    except (KeyError, TypeError, RuntimeError, ValueError) as error:
        raise CheckpointError(f"checkpoint {path} does not match its model: {error}") from error
    return model.eval(), info, dict(payload.get("extra", {}))


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError, OSError) as error:
        raise CheckpointError(f"{path} is not a readable checkpoint: {error}") from error
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a gap-art checkpoint (no {CHECKPOINT_FORMAT!r} tag)")
    if payload.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint version {payload.get('version')}, "
            f"this gap-art reads version {CHECKPOINT_VERSION}"
        )
    return payload
