"""Who owns which seed in a study: the defender's (the study seed), the attacker's, and those
of a ``+pool`` target's own sources, so that no model of one party shares a seed with the
other's (docs/methodology.md states the mapping)."""

from __future__ import annotations

ATTACKER_SEED_OFFSET = 7919
"""The attacker's seeds are the study seed + this offset, never the defender's: their own
models (``independent``, ``independent-arch``, ``robust``, ``replica``: another
initialisation, data order and calibration subset) and the random starts of every attack
crafted against a target (transfer and white-box). The ``replicas`` attacker's k-th member
(k = 0, 1, ...) uses seed + (k + 1) x offset, so its first member is the ``replica``. The
defender's seed governs training, pruning, fine-tuning, its validation examples and the
sanity checks."""


def attacker_seed(seed: int, member: int = 0) -> int:
    """The attacker's seed in study seed ``seed`` (``member``: which of the ``replicas``)."""
    return seed + ATTACKER_SEED_OFFSET * (member + 1)


POOL_SEED_OFFSET = 104729
"""The defender's ``+pool`` sources (its own replicas, independent and robust models) use seeds
of their own: the target's seed + this offset x (k + 1) for the k-th, never the study's nor
the attacker's (an attacker's replica of a ``+pool`` target builds its pool from its own seed
the same way)."""


def pool_seed(seed: int, member: int) -> int:
    """The seed of the ``member``-th source of the pool of a ``+pool`` target of ``seed``."""
    return seed + POOL_SEED_OFFSET * (member + 1)
