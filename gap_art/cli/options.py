"""What every ``gap-art`` command shares: option decorators (one name and one type per
setting across commands), lazily loaded choices (the registries import torch, which
``gap-art --help`` should not wait for), comma lists parsed one way, the bench's options
generated from :class:`~gap_art.bench.BenchConfig`'s fields, and errors that name the flag.
"""

from __future__ import annotations

import contextlib
import re
import types
import typing
from collections.abc import Callable, Iterator
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gap_art.settings import DEVICES, PRECISIONS

if TYPE_CHECKING:
    from gap_art.evaluation.health import ModelHealth

LIST_HELP = "comma-separated"
Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


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


def robust_defences() -> list[str]:
    from gap_art.bench.config import ROBUST_DEFENCES

    return list(ROBUST_DEFENCES)


def pool_sources() -> list[str]:
    from gap_art.bench.pool_sources import POOL_SOURCES

    return POOL_SOURCES.names()


def threat_models() -> list[str]:
    from gap_art.bench.threats import THREATS

    return THREATS.names()


class LazyChoice(click.Choice):
    """``click.Choice`` whose choices are read when first needed; a near miss gets a
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


class CommaList(click.ParamType):
    """A comma-separated list of ``item`` values: the one way every command reads a list.
    ``none`` is the empty list; ``all`` is every name ``everything`` lists (where given)."""

    name = "list"

    def __init__(self, item: type = str, everything: Callable[[], list[str]] | None = None) -> None:
        self.item = item
        self.everything = everything

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, list):
            return value
        items = [part.strip() for part in str(value).split(",") if part.strip()]
        if items == ["none"]:
            return []
        if items == ["all"] and self.everything is not None:
            return list(self.everything())
        try:
            return [self.item(part) for part in items]
        except ValueError:
            self.fail(f"expected {LIST_HELP} {self.item.__name__}s, got {value!r}", param, ctx)


class OrNone(click.ParamType):
    """A number of ``kind``, or ``none`` for a setting whose ``None`` means something of its
    own (train every epoch, every example): passed on as the text ``none``, which the settings
    read as ``None`` (config files spell it the same way)."""

    def __init__(self, kind: type) -> None:
        self.kind = kind
        self.name = f"{kind.__name__} or none"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and value.strip().lower() == "none":
            return "none"
        try:
            return self.kind(value)
        except (TypeError, ValueError):
            self.fail(f"expected {self.name}, got {value!r}", param, ctx)


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


def as_flag(message: str) -> str:
    """A setting's error as the command line spells it: ``--n-test must be ...`` for
    ``n_test must be ...``, for any option of the command running."""
    from gap_art.validation import renamed

    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return message
    flags = {p.name: p.opts[0] for p in ctx.command.params if isinstance(p, click.Option) and p.name}
    return renamed(message, flags)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """The user's mistakes inside the block: missing data is an error (exit 1) that says how to
    get it; a foreign file or a bad setting (a :class:`~gap_art.errors.ParameterError`) is a
    usage error (exit 2) naming the flag. Any other exception is a bug and keeps its traceback."""
    from gap_art.data import DataUnavailableError
    from gap_art.errors import ParameterError

    try:
        yield
    except DataUnavailableError as error:
        raise click.ClickException(str(error)) from None
    except ParameterError as error:
        raise click.UsageError(as_flag(str(error))) from None


def stack(*decorators: Decorator) -> Decorator:
    """Several option decorators as one, applied in the order written (as in ``--help``)."""

    def apply(command: Callable[..., Any]) -> Callable[..., Any]:
        for decorator in reversed(decorators):
            command = decorator(command)
        return command

    return apply


def dataset_option(default: str | None = "digits", help: str = "Dataset.") -> Decorator:
    return click.option(
        "--dataset", type=LazyChoice(datasets), default=default, show_default=default is not None, help=help
    )


def device_option(default: str | None = "auto") -> Decorator:
    return click.option(
        "--device",
        type=click.Choice(list(DEVICES)),
        default=default,
        show_default=default is not None,
        callback=_present_device,
        help="Where to compute.",
    )


def _present_device(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A GPU asked for must be here: a usage error now, not a traceback from the first model."""
    from gap_art.errors import ParameterError
    from gap_art.runtime import check_device

    try:
        if value is not None:
            check_device(value, "device")
    except ParameterError as error:
        raise click.BadParameter(str(error).removeprefix("device "), ctx, param) from None
    return value


def data_dir_option() -> Decorator:
    return click.option("--data-dir", type=click.Path(file_okay=False), help="Where datasets are read from.")


def seed_option(help: str = "Seed.") -> Decorator:
    return click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help=help)


# The bench's options, one per BenchConfig field ------------------------------------------------

REGISTRY_LISTS: dict[str, Callable[[], list[str]]] = {
    "methods": criteria,
    "attacks": attacks,
    "whitebox_attacks": attacks,
    "defences": art_defences,
    "threat_models": threat_models,
    "pool_sources": pool_sources,
}
"""List settings whose items are registry names, listed in their help; ``all`` means all."""
CHOICES: dict[str, Callable[[], list[str]]] = {
    "dataset": datasets,
    "device": lambda: list(DEVICES),
    "precision": lambda: list(PRECISIONS),
    "attack_backend": lambda: ["torchattacks", "art"],
    "split": lambda: ["test", "train"],
    "robust_defence": robust_defences,
}
PATHS = {
    "source_checkpoint": click.Path(dir_okay=False),
    "data_dir": click.Path(file_okay=False),
    "data": click.Path(exists=True),
}


def field_help(cls: type, name: str) -> str:
    """The ``:param name:`` text of a dataclass's docstring, on one line."""
    match = re.search(rf":param {name}:(.*?)(?=\n\s*:param |\Z)", cls.__doc__ or "", re.S)
    text = " ".join(match.group(1).split()) if match else ""
    text = re.sub(r":\w+:`~?(?:[\w.]*\.)?(\w+)`", r"\1", text)  # :func:`a.b.name` -> name
    return text.replace("``", "").rstrip(".")


def config_options(config_class: type) -> list[click.Parameter]:
    """One option per field of ``config_class`` (a dataclass), typed by its annotation and
    documented by its docstring: a flag and a config key cannot drift apart. Every option
    defaults to ``None``: "not given", so presets and config files keep their values."""
    hints = typing.get_type_hints(config_class)

    def holder() -> None: ...

    for f in fields(config_class):
        if not f.metadata.get("cli", True):
            continue
        _config_option(f.name, hints[f.name], field_help(config_class, f.name))(holder)
    return list(holder.__click_params__)  # type: ignore[attr-defined]


class ConfigCommand(click.Command):
    """A command with one option per field of a settings dataclass, placed after its first
    ``position`` options. The dataclass is imported on first use (it pulls in torch), so
    ``gap-art --help`` stays fast."""

    def __init__(self, *args: Any, config: Callable[[], type], position: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._config, self._position, self._loaded = config, position, False

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        if not self._loaded:
            self.params[self._position : self._position] = config_options(self._config())
            self._loaded = True
        return super().get_params(ctx)


def _config_option(name: str, annotation: Any, help: str) -> Decorator:
    flag = "--" + name.replace("_", "-")
    kind = _unwrap_optional(annotation)
    if kind is bool:
        return click.option(f"{flag}/--no-{flag[2:]}", name, default=None, help=help)
    if typing.get_origin(kind) is list:
        (item,) = typing.get_args(kind)
        if name in REGISTRY_LISTS:
            names = REGISTRY_LISTS[name]
            return click.option(flag, name, cls=RegistryOption, names=names, type=CommaList(item, names),
                                help=f"{help} ({LIST_HELP}, 'all' or 'none').")  # fmt: skip
        return click.option(flag, name, type=CommaList(item), help=f"{help} ({LIST_HELP}).")
    if name in CHOICES:
        return click.option(flag, name, type=LazyChoice(CHOICES[name]), help=help)
    if name == "input_size":  # H W, as every command takes it
        return click.option(
            flag, name, type=click.IntRange(min=1), nargs=2, default=None, help=f"{help} (H W).",
            callback=lambda ctx, param, value: list(value) if value else None,
        )  # fmt: skip
    if kind in (int, float) and kind is not annotation:  # its None is a setting: 'none' gives it
        return click.option(flag, name, type=OrNone(kind), help=f"{help} (a number or 'none').")
    return click.option(flag, name, type=PATHS.get(name, kind), help=help)


def _unwrap_optional(annotation: Any) -> Any:
    """``X`` of ``X | None``."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def report_health(health: ModelHealth, path: Path) -> None:
    """Say what a new model lost (collapsed classes, chance accuracy) on stderr; a model that
    fell to chance from a parent above it exits 1, saved but not reported as a success."""
    for line in health.warnings():
        click.echo(f"warning: {line}", err=True)
    if health.broken:
        click.echo(f"the model is saved at {path}, but it does not classify: exit 1", err=True)
        raise SystemExit(1)
