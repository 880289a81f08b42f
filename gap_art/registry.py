"""One small registry class for every catalogue: pruning criteria, attacks, ART defences.

A registry maps names to classes. Built-in entries register themselves with the
:meth:`Registry.register` decorator when their module is imported; a third-party package adds
its own through a ``pyproject.toml`` entry point in the registry's group, loaded on first use:

.. code-block:: toml

    [project.entry-points."gap_art.importance"]
    my-criterion = "my_package.criteria:MyCriterion"
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from gap_art.errors import ParameterError

T = TypeVar("T", bound=type)


class UnknownNameError(ParameterError):
    """A name that no registry entry has; the message lists the known ones (and a close match)."""


def did_you_mean(value: str, known: Sequence[str]) -> str:
    """`` (did you mean 'pgd'?)`` for a near miss among ``known``, else an empty string."""
    close = difflib.get_close_matches(value, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def import_submodules(package: str, path: Iterable[str]) -> None:
    """Import every module of a package, so that a class registered in a new file of it is
    known without another file naming that module."""
    for module in pkgutil.iter_modules(path):
        importlib.import_module(f"{package}.{module.name}")


class Registry(Generic[T]):
    """Named classes of one kind.

    :param kind: What an entry is, for messages (``pruning criterion``, ``attack``, ...).
    :param group: The entry-point group third-party packages register under.
    """

    def __init__(self, kind: str, group: str) -> None:
        self.kind = kind
        self.group = group
        self._entries: dict[str, T] = {}
        self._plugins_loaded = False

    def register(self, name: str) -> Callable[[T], T]:
        """Class decorator: file the class under ``name`` (and set its ``name`` attribute)."""

        def decorate(cls: T) -> T:
            existing = self._entries.get(name)
            if existing is not None and existing is not cls:
                raise ParameterError(f"{self.kind} {name!r} is already registered by {existing.__qualname__}")
            cls.name = name  # type: ignore[attr-defined]
            self._entries[name] = cls
            return cls

        return decorate

    def unregister(self, name: str) -> None:
        """Remove an entry (for plugins replaced at run time, and tests)."""
        self._entries.pop(name, None)

    def get(self, name: str, param: str | None = None) -> T:
        """The class registered as ``name``.

        :param param: The parameter being resolved, named in the error (default: the kind).
        :raises UnknownNameError: No such entry; the message lists the known names.
        """
        self._load_plugins()
        if name not in self._entries:
            known = self.names()
            label = param or self.kind
            raise UnknownNameError(
                f"{label} must be one of {known}, got {name!r}{did_you_mean(str(name), known)}"
            )
        return self._entries[name]

    def names(self, where: Callable[[T], bool] | None = None) -> list[str]:
        """Registered names in registration order, optionally only those whose class passes ``where``."""
        self._load_plugins()
        return [name for name, cls in self._entries.items() if where is None or where(cls)]

    def __contains__(self, name: object) -> bool:
        self._load_plugins()
        return name in self._entries

    def __iter__(self) -> Iterator[tuple[str, T]]:
        self._load_plugins()
        return iter(list(self._entries.items()))

    def _load_plugins(self) -> None:
        """Import every entry point of the group once; a class that did not register itself
        is registered under the entry point's name."""
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for point in entry_points(group=self.group):
            loaded = point.load()
            if isinstance(loaded, type) and loaded not in self._entries.values():
                self.register(point.name)(loaded)  # type: ignore[arg-type]
