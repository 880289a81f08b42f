"""Who crafts the examples: the study's threat models, by name."""

from __future__ import annotations

import re

from gap_art.errors import ParameterError
from gap_art.registry import did_you_mean

THREAT_MODELS: tuple[str, ...] = ("dense", "independent", "independent-arch", "robust", "replica")
THREAT_MODELS += ("replicas", "replica-independent", "ensemble")
"""Who crafts: M (the paper's threat model); the attacker's own dense model (same
architecture and recipe); ``independent-arch``, theirs of another architecture; ``robust``,
theirs adversarially trained by ART (``robust_defence``); a ``replica``, the target's method and
ratio rerun on our M with the attacker's seed (the strongest knowledgeable attacker);
``replicas``, the logit ensemble of ``replicas`` replicas, and ``replicas-K`` of K of them (K >= 2:
``replicas-3,replicas-5`` runs both in one study, sharing their first three members);
``replica-independent``, the method on their own model; an ``ensemble`` of M, theirs and the
replica. A target's headline is its worst-attacker transfer accuracy: the minimum over every
attacker and attack run."""

_SIZED_REPLICAS = re.compile(r"replicas-([1-9][0-9]*)")


def replica_count(threat: str, default: int) -> int | None:
    """How many replicas the threat model ``threat`` averages: ``default`` (the study's
    ``replicas``) for ``replicas``, K for ``replicas-K``, ``None`` for any other."""
    if threat == "replicas":
        return default
    sized = _SIZED_REPLICAS.fullmatch(threat)
    return int(sized.group(1)) if sized else None


def check_threat_model(threat: object, param: str) -> str:
    """``threat`` if it names a threat model (``replicas-K`` with K >= 2 included)."""
    if threat in THREAT_MODELS:
        return str(threat)
    count = replica_count(threat, 0) if isinstance(threat, str) else None
    if count is None or count < 2:
        hint, known = did_you_mean(str(threat), THREAT_MODELS), [*THREAT_MODELS, "replicas-K (K >= 2)"]
        raise ParameterError(f"{param}: unknown {threat!r}{hint}; known: {known}")
    return str(threat)
