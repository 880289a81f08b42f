"""Checks shared by the public API: clear errors that name the parameter and what is allowed."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping, Sequence

import numpy as np

from gap_art.errors import ParameterError, ParameterTypeError
from gap_art.registry import did_you_mean


def check_inputs(x: object, input_shape: tuple[int, ...], param: str = "x") -> np.ndarray:
    """``x`` as a float32 array of shape ``(n, *input_shape)`` with no NaN, or a ``ValueError``."""
    if not isinstance(x, np.ndarray):
        raise ParameterTypeError(f"{param} must be a numpy array, got {type(x).__name__}")
    if x.shape[1:] != tuple(input_shape):
        raise ParameterError(
            f"{param} must have shape (n, {', '.join(map(str, input_shape))}), got {x.shape}"
        )
    if len(x) == 0:
        raise ParameterError(f"{param} must hold at least one example")
    if np.isnan(x).any():
        raise ParameterError(f"{param} contains NaN values")
    return x.astype(np.float32, copy=False)


def check_labels(y: object, n: int, nb_classes: int, param: str = "y") -> np.ndarray:
    """Class indices from ``y`` given as indices or one-hot (as in ART), length ``n``, in range."""
    if y is None:
        raise ParameterError(f"{param} is required: pass the true labels (indices or one-hot)")
    labels = np.asarray(y)
    if labels.ndim == 2:
        if labels.shape[1] != nb_classes:
            raise ParameterError(
                f"{param} one-hot labels must have {nb_classes} columns, got {labels.shape[1]}"
            )
        labels = labels.argmax(axis=1)
    if labels.ndim != 1:
        raise ParameterError(f"{param} must be class indices (n,) or one-hot (n, {nb_classes})")
    if len(labels) != n:
        raise ParameterError(f"{param} has {len(labels)} labels for {n} examples")
    if not np.issubdtype(labels.dtype, np.integer) and not np.all(np.mod(labels, 1) == 0):
        raise ParameterError(f"{param} must hold integer class indices")
    labels = labels.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= nb_classes):
        raise ParameterError(
            f"{param} labels must be in [0, {nb_classes - 1}], got [{labels.min()}, {labels.max()}]"
        )
    return labels


def check_validation_data(
    validation_data: object, input_shape: tuple[int, ...], nb_classes: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """``validation_data`` as ``(x_val, class indices)``, or ``None`` when not given."""
    if validation_data is None:
        return None
    if not isinstance(validation_data, tuple | list) or len(validation_data) != 2:
        raise ParameterTypeError("validation_data must be a pair (x_val, y_val) of numpy arrays")
    x = check_inputs(validation_data[0], input_shape, "validation_data[0]")
    return x, check_labels(validation_data[1], len(x), nb_classes, "validation_data[1]")


def check_range(value: float, param: str, low: float, high: float, low_open: bool = False) -> float:
    """``low <= value <= high`` (``low < value`` when ``low_open``), else a ``ValueError``."""
    bad = value <= low if low_open else value < low
    if bad or value > high or value != value:
        bracket = "(" if low_open else "["
        raise ParameterError(f"{param} must be in {bracket}{low}, {high}], got {value}")
    return float(value)


def check_compression(value: object, param: str = "compression") -> float:
    """A compression ratio, prunable weights over weights kept: a number >= 1 (1 keeps every
    weight, the unpruned arm of a capacity study; 2 removes half), else a ``ValueError``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not value >= 1
        or value == float("inf")
    ):
        raise ParameterError(
            f"{param} must be a number >= 1 (1 keeps every weight, 2 removes half), got {value!r}"
        )
    return float(value)


def check_budget(settings: object, span: float) -> None:
    """``settings.eps`` and ``settings.eps_step`` (where not ``None``) in ``(0, span]``: an
    L-inf budget within the input range."""
    for name in ("eps", "eps_step"):
        value = getattr(settings, name)
        if value is not None:
            check_range(value, name, 0.0, span, low_open=True)


def check_int(value: object, param: str, minimum: int) -> int:
    """An ``int`` at least ``minimum``, else a ``ValueError`` naming ``param``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ParameterError(f"{param} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_numbers(values: object, param: str, low: float, high: float) -> list[float]:
    """A list (maybe empty) of numbers, each in the open interval ``(low, high)``."""
    if not isinstance(values, list) or any(
        isinstance(v, bool) or not isinstance(v, (int, float)) or not low < v < high for v in values
    ):
        raise ParameterError(f"{param} must be a list of numbers in ({low:g}, {high:g}), got {values!r}")
    return values


def check_bool(value: object, param: str) -> bool:
    """``value`` if it is ``True`` or ``False`` (a TOML or JSON boolean), else an error naming
    ``param``."""
    if not isinstance(value, bool):
        raise ParameterError(f"{param} must be true or false, got {value!r}")
    return value


def check_choice(value: object, param: str, allowed: Sequence[str]) -> str:
    """``value`` must be one of ``allowed``; the error lists them (and the closest, if any)."""
    if value not in allowed:
        raise ParameterError(
            f"{param} must be one of {list(allowed)}, got {value!r}{did_you_mean(str(value), allowed)}"
        )
    return str(value)


def check_choices(values: object, param: str, allowed: Sequence[str], allow_empty: bool = False) -> list[str]:
    """A list whose every item is one of ``allowed``, each once (non-empty unless ``allow_empty``)."""
    if not isinstance(values, list) or (not values and not allow_empty):
        raise ParameterError(f"{param} must be a list drawn from {list(allowed)}, got {values!r}")
    twice = sorted({str(v) for v in values if values.count(v) > 1})
    if twice:
        raise ParameterError(f"{param} must name each item once, got {twice} more than once")
    for value in values:
        if value not in allowed:
            hint = did_you_mean(str(value), allowed)
            raise ParameterError(f"{param}: unknown {value!r}{hint}; known: {list(allowed)}")
    return values


def check_known_params(given: Iterable[str], known: Sequence[str], owner: str) -> None:
    """Refuse parameter names outside ``known`` (a typo in ``set_params`` must not pass
    silently), listing the known ones."""
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ParameterError(f"unknown parameters {unknown} for {owner}; known: {list(known)}")


def renamed(message: str, names: Mapping[str, str]) -> str:
    """An error message that starts with a setting's name, with the name as the caller spells
    it (``names[name]``): ``epochs must be ...`` becomes ``finetune_epochs must be ...``."""
    for name in sorted(names, key=len, reverse=True):
        if message.startswith((f"{name} ", f"{name}:")):
            return names[name] + message[len(name) :]
    return message


@contextlib.contextmanager
def params_named(names: Mapping[str, str]) -> Iterator[None]:
    """Inside the block, a ``ValueError`` about a setting names it as the caller spells it
    (see :func:`renamed`): a settings object validates, the caller's parameter is named."""
    try:
        yield
    except ValueError as error:
        raise ParameterError(renamed(str(error), names)) from None
