"""Every name the study accepts, with one line each, read from the registries: what
``gap-art list`` prints."""

from __future__ import annotations

from typing import Any

from gap_art.attacks import ATTACKS
from gap_art.bench.config import BenchConfig
from gap_art.bench.config_files import PRESETS
from gap_art.bench.pool_sources import POOL_SOURCES
from gap_art.bench.threats import THREATS
from gap_art.data import DATASETS
from gap_art.defences.art_builtin import ART_DEFENCES
from gap_art.defences.methods import method_catalogue
from gap_art.models import MODELS
from gap_art.pruning.structured import CHANNEL_CRITERIA


def _described(registry: Any) -> dict[str, str]:
    return {name: cls.description for name, cls in registry}


def _preset_line(config: BenchConfig) -> str:
    """A preset's data, model, scale and seeds, the figures that tell a preset from its ``-quick``
    variant."""
    train = "every" if config.n_train is None else f"{config.n_train:,}"
    test = "every" if config.n_test is None else f"{config.n_test:,}"
    return f"{config.dataset}, {config.arch}, {train} training / {test} test images, seeds {config.seeds}"


def catalogue() -> dict[str, dict[str, str]]:
    """``{section: {name: one line}}`` for presets, pruning criteria, attacks, ART defences,
    threat models, pool sources, models and datasets (plugins registered through entry points
    included)."""
    return {
        "presets": {name: _preset_line(c) for name, c in PRESETS.items()},
        "methods (--methods): criteria, modifiers, aliases": method_catalogue(),
        "channel criteria (gap-art prune --structure channel --method)": {
            name: criterion.description for name, criterion in CHANNEL_CRITERIA.items()
        },
        "attacks (--attacks)": _described(ATTACKS),
        "ART defences (--defences)": _described(ART_DEFENCES),
        "threat models (--threat-models; replicas-K: K replicas)": _described(THREATS),
        "pool sources (--pool-sources)": _described(POOL_SOURCES),
        "models (--arch; or any torchvision classifier)": {
            name: f"{spec.input_hw[0]}x{spec.input_hw[1]} inputs" if spec.input_hw else "any input size"
            for name, spec in MODELS.items()
        },
        "datasets (--dataset)": {
            name: f"{'x'.join(map(str, info.input_shape))}, {info.nb_classes} classes"
            for name, info in DATASETS.items()
        },
    }


def format_catalogue(entries: dict[str, dict[str, str]]) -> str:
    """The catalogue as aligned text, a section per block."""
    blocks = []
    for title, names in entries.items():
        width = max(len(name) for name in names)
        lines = [f"{title}:"] + [f"  {name.ljust(width)}  {text}".rstrip() for name, text in names.items()]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"
