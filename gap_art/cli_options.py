"""The command line's option machinery: lazily-loaded choices (the registries import torch,
which ``gap-art --help`` should not wait for), help texts read from the registries, and the
translation of ``gap-art bench`` options into :class:`~gap_art.bench.BenchConfig` settings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

LIST_HELP = "comma-separated"


def criteria() -> list[str]:
    from gap_art.pruning.importance import IMPORTANCE

    return IMPORTANCE.names()


def attacks() -> list[str]:
    from gap_art.attacks import ATTACKS

    return ATTACKS.names()


def art_defences() -> list[str]:
    from gap_art.defences.art_builtin import ART_DEFENCES

    return ART_DEFENCES.names()


def presets() -> list[str]:
    from gap_art.bench import PRESETS

    return sorted(PRESETS)


def datasets() -> list[str]:
    from gap_art.data import DATASETS

    return sorted(DATASETS)


class LazyChoice(click.Choice):
    """``click.Choice`` whose choices are read when first needed (importing the registries
    pulls in torch, which ``gap-art --help`` should not wait for); a near miss gets a
    "did you mean"."""

    def __init__(self, load: Callable[[], list[str]]) -> None:
        self._load = load
        super().__init__([])

    @property
    def choices(self) -> tuple[str, ...]:
        return tuple(self._load())

    @choices.setter
    def choices(self, value: object) -> None:
        pass

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter as error:
            from gap_art.registry import did_you_mean

            raise click.BadParameter(
                f"{error.message}{did_you_mean(str(value), self.choices)}", ctx, param
            ) from None


class RegistryOption(click.Option):
    """An option whose help ends with a registry's names, read when the help is shown, so
    that criteria, attacks and defences registered by plugins are listed too."""

    def __init__(self, *args: Any, names: Callable[[], list[str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.names = names
        self.template = self.help or ""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        self.help = f"{self.template} Known: {', '.join(self.names())}."
        return super().get_help_record(ctx)


def split(value: str | None) -> list[str] | None:
    if value is None:
        return None
    items = [item.strip() for item in value.split(",") if item.strip()]
    return [] if items == ["none"] else items


def numbers(value: str | None, kind: type, name: str) -> list | None:
    items = split(value)
    if items is None:
        return None
    try:
        return [kind(item) for item in items]
    except ValueError:
        raise click.BadParameter(
            f"expected {LIST_HELP} {kind.__name__}s, got {value!r}", param_hint=name
        ) from None


def overrides(options: dict[str, Any]) -> dict[str, Any]:
    """CLI options that were given, as BenchConfig fields."""
    from gap_art.bench.config import THREAT_MODELS
    from gap_art.defences.art_builtin import ART_DEFENCES
    from gap_art.pruning.importance import IMPORTANCE

    lists = {
        "methods": split(options["methods"]),
        "attacks": split(options["attacks"]),
        "defences": split(options["defences"]),
        "whitebox_attacks": split(options["whitebox_attacks"]),
        "compression": numbers(options["compression"], float, "--compression"),
        "seeds": numbers(options["seeds"], int, "--seeds"),
        "threat_models": split(options["threat_models"]),
        "curve_eps": numbers(options["curve_eps"], float, "--curve-eps"),
        "gap_eps": numbers(options["gap_eps"], float, "--gap-eps"),
    }
    everything = {
        "methods": IMPORTANCE.names(),
        "defences": ART_DEFENCES.names(),
        "threat_models": list(THREAT_MODELS),
    }
    for name, known in everything.items():
        if lists[name] == ["all"]:
            lists[name] = list(known)
    plain = (
        "dataset",
        "model",
        "eps",
        "epochs",
        "finetune_epochs",
        "finetune_patience",
        "validation_fraction",
        "n_train",
        "n_test",
        "device",
        "data_dir",
        "attack_backend",
        "source_checkpoint",
    )
    flags = ("sanity_checks", "prune_classifier")
    given = {key: options[key] for key in plain + flags if options[key] is not None}
    given.update({key: value for key, value in lists.items() if value is not None})
    return given


def as_flag(message: str) -> str:
    """A setting's error as the command line spells it: ``--n-test`` for ``n_test``."""
    from dataclasses import fields

    from gap_art.bench import BenchConfig

    for name in sorted((f.name for f in fields(BenchConfig)), key=len, reverse=True):
        if message.startswith((f"{name} ", f"{name}:")):
            return "--" + name.replace("_", "-") + message[len(name) :]
    return message
