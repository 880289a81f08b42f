"""Config files: reading a study's settings from TOML or JSON, and the named presets (each a
config file in :data:`PRESET_FOLDER`)."""

from __future__ import annotations

import copy
import json
import tomllib
from pathlib import Path

from gap_art.bench.config import BenchConfig, ConfigError

PRESET_FOLDER = Path(__file__).resolve().parent / "presets"
"""Each preset is a config file there (``<name>.toml``): what ``--config`` reads, so a copy of
one is a starting point for a study of one's own."""


def preset(name: str) -> BenchConfig:
    """A fresh, deep copy of a named preset (``quick``, ``fashion``, ``harden``, ``pool``, each
    but quick with a smaller ``-quick`` variant, and ``cifar10``): each trains its source and
    fine-tunes every method to convergence. fashion, harden and pool run at issue 36's scale
    (dense models at Fashion-MNIST's normal accuracy, 1,000 test images a seed); on 2 CPU cores
    quick takes under a minute, fashion about 50 minutes, harden and pool hours (their costs are
    in benchmarks/README.md), and each ``-quick`` variant the same design at a smaller scale."""
    if name not in PRESETS:
        raise ConfigError(f"preset must be one of {sorted(PRESETS)}, got {name!r}")
    return copy.deepcopy(PRESETS[name])


def load_config_file(path: str | Path, base: BenchConfig | None = None) -> BenchConfig:
    """Read a TOML or JSON config file (a flat table of :class:`BenchConfig` fields)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise ConfigError(f"config file {path} cannot be read: {error.strerror}") from error
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            data = tomllib.loads(text)
    except ValueError as error:
        raise ConfigError(f"config file {path} is not valid {path.suffix or 'TOML'}: {error}") from error
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a table of settings")
    data = dict(data)
    preset_name = data.pop("preset", None)
    start = preset(preset_name) if preset_name else base
    return BenchConfig.from_dict(data, start)


PRESETS: dict[str, BenchConfig] = {
    path.stem: load_config_file(path) for path in sorted(PRESET_FOLDER.glob("*.toml"))
}
"""The presets by name, read once from :data:`PRESET_FOLDER`."""
