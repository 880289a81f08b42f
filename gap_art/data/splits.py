"""How a study's three splits are drawn from a dataset's two: *train* (every model trains on
it), *validation* (no model ever trains on it: every selection reads it) and *test* (scores
only). Validation rows come from the official training rows that the train subset leaves
out, drawn before anything is trained; each split is recorded (:class:`SplitRecord`) with a
hash of its indices, so a reader can check that the three are disjoint."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from gap_art.errors import ParameterError
from gap_art.runtime import seeded_subset

TRAIN, VALIDATION, TEST = "train", "validation", "test"
SPLITS = (TRAIN, VALIDATION, TEST)
"""The splits a :class:`~gap_art.data.DataBundle` may hold."""


@dataclass(frozen=True)
class SplitRecord:
    """How one split was drawn.

    :param name: ``train``, ``validation`` or ``test``.
    :param source: The dataset split its rows index (``train``: the official training rows;
        ``test``: the official test rows).
    :param size: Its number of rows.
    :param seed: The seed that drew it (``None``: every row of ``source``).
    :param indices_sha256: SHA-256 of its sorted row indices into ``source`` (int64).
    """

    name: str
    source: str
    size: int
    seed: int | None
    indices_sha256: str

    @classmethod
    def of(cls, name: str, source: str, indices: np.ndarray, seed: int | None) -> SplitRecord:
        digest = hashlib.sha256(np.ascontiguousarray(indices, dtype=np.int64).data).hexdigest()
        return cls(name, source, len(indices), seed, digest)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def validation_size(fraction: float, n_rows: int, n_train: int | None) -> int:
    """How many validation rows a ``fraction`` asks for: that share of the training set's size
    (``n_train``, or all ``n_rows`` official training rows), at least one."""
    return max(1, round(fraction * (n_rows if n_train is None else n_train)))


def training_rows(
    n_rows: int, n_train: int | None, validation_fraction: float | None, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint sorted indices ``(train, validation)`` into ``n_rows`` official training rows.

    Without a ``validation_fraction``: ``n_train`` rows drawn with ``seed`` (all when
    ``None``) and no validation rows. With one, the validation rows are drawn first, then the
    train rows from the rest (all the rest when ``n_train`` is ``None``), so no train row is
    ever a validation row.
    """
    if validation_fraction is None:
        return seeded_subset(n_rows, n_train, seed), np.arange(0)
    if not 0 < validation_fraction < 1:
        raise ParameterError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
    n_validation = validation_size(validation_fraction, n_rows, n_train)
    rest = n_rows - n_validation
    if rest < 1 or (n_train is not None and not 1 <= n_train <= rest):
        raise ParameterError(
            f"n_train must be between 1 and {rest} (the {n_rows} training rows less "
            f"{n_validation} validation rows), got {n_train}"
        )
    order = np.random.default_rng(seed).permutation(n_rows)
    train = order[n_validation:] if n_train is None else order[n_validation : n_validation + n_train]
    return np.sort(train), np.sort(order[:n_validation])
