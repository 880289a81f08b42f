"""Frozen settings and result dataclasses rebuilt from their JSON form (``asdict`` written as
JSON, read back): nested dataclasses, tuples and optional members come back as their types."""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from typing import Any, TypeVar

T = TypeVar("T")


def from_dict(cls: type[T], data: Mapping[str, Any]) -> T:
    """Rebuild a settings dataclass, nested settings included, from its ``asdict`` form (a
    JSON round trip); keys that are not fields are ignored."""
    hints = typing.get_type_hints(cls)
    values = {f.name: _from_json(hints[f.name], data[f.name]) for f in fields(cls) if f.name in data}  # type: ignore[arg-type]
    return cls(**values)


def _from_json(hint: Any, value: Any) -> Any:
    """``value`` read back from JSON as type ``hint`` says: a nested dataclass from its dict, a
    tuple from its list, each member too (an optional one as its type where given)."""
    if value is None:
        return None
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        given = [option for option in typing.get_args(hint) if option is not type(None)]
        return _from_json(given[0], value) if len(given) == 1 else value
    if is_dataclass(hint) and isinstance(value, Mapping):
        return from_dict(hint, value)  # type: ignore[arg-type]
    if typing.get_origin(hint) is tuple and isinstance(value, (list, tuple)):
        member = typing.get_args(hint)[0] if typing.get_args(hint) else Any
        return tuple(_from_json(member, item) for item in value)
    return value
