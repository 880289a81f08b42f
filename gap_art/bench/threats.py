"""Who crafts the examples: the study's threat models, one small registered class per kind
(:data:`THREATS`; a plugin adds an attacker kind with ``@THREATS.register("name")`` or the
``gap_art.threat_models`` entry-point group). Each picks, for one target, the models its
examples are crafted on (their logit average where several) from an :class:`AttackerModels`
the study builds; a target's headline is its worst-attacker transfer accuracy, the minimum
over every attacker and attack run."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from typing import ClassVar, Protocol, TypeVar

from gap_art.errors import ParameterError
from gap_art.registry import Registry, did_you_mean

T = TypeVar("T")

DENSE, INDEPENDENT, INDEPENDENT_ARCH, ROBUST = "dense", "independent", "independent-arch", "robust"
"""The dense models :meth:`AttackerModels.own` holds."""


class AttackerModels(Protocol[T]):
    """What a threat model picks from against one target of one seed."""

    replicas: int
    """How many replicas ``replicas`` averages (the study's ``replicas``)."""

    def own(self, kind: str) -> T:
        """A dense model: M (``dense``), or the attacker's own (``independent``, of our
        architecture; ``independent-arch``, of another; ``robust``, theirs adversarially
        trained by ART's ``robust_defence``)."""
        ...

    def replica(self, on: T, member: int = 0) -> T | None:
        """The target's method, ratio and settings rerun on ``on`` with the attacker's seed
        ``member`` (their calibration subset, tie-breaking and fine-tuning order); ``None`` for
        a target whose method no one can rerun (the dense model, an ART preprocessor)."""
        ...


class ThreatModel(ABC):
    """One kind of attacker: the models it crafts on against one target."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""

    @abstractmethod
    def sources(self, models: AttackerModels[T]) -> tuple[T, ...]:
        """The models this attacker crafts on against the target ``models`` describes; ``()``
        where it does not apply to that target."""


THREATS: Registry[type[ThreatModel]] = Registry("threat model", "gap_art.threat_models")


class _OwnModel(ThreatModel):
    """An attacker crafting on one dense model, the same for every target: the one
    :meth:`AttackerModels.own` holds under the name this kind is registered as."""

    def sources(self, models: AttackerModels[T]) -> tuple[T, ...]:
        return (models.own(self.name),)


@THREATS.register(DENSE)
class Dense(_OwnModel):
    description = "M itself, the parent every target is built from (the paper's threat model)"


@THREATS.register(INDEPENDENT)
class Independent(_OwnModel):
    description = "the attacker's own dense model (our architecture and recipe, their seed)"


@THREATS.register(INDEPENDENT_ARCH)
class IndependentArch(_OwnModel):
    description = "the attacker's own dense model of another architecture"


@THREATS.register(ROBUST)
class Robust(_OwnModel):
    description = "the attacker's own dense model adversarially trained by ART (robust_defence)"


@THREATS.register("replica")
class Replica(ThreatModel):
    description = (
        "the target's method rerun on M with the attacker's seed (the strongest knowledgeable attacker)"
    )

    def sources(self, models: AttackerModels[T]) -> tuple[T, ...]:
        return _all_or_none([models.replica(models.own(DENSE))])


@THREATS.register("replicas")
class Replicas(ThreatModel):
    """``count`` replicas' logit average (``None``: the study's ``replicas``), each with its own
    attacker seed, so a smaller ensemble's members are a larger one's first: ``replicas-K`` in
    a study names K (K >= 2)."""

    description = "the logit average of several replicas (replicas-K: of K)"

    def __init__(self, count: int | None = None) -> None:
        self.count = count

    def sources(self, models: AttackerModels[T]) -> tuple[T, ...]:
        dense = models.own(DENSE)
        count = self.count or models.replicas
        return _all_or_none([models.replica(dense, member) for member in range(count)])


@THREATS.register("replica-independent")
class ReplicaIndependent(ThreatModel):
    description = "the target's method rerun on the attacker's own dense model"

    def sources(self, models: AttackerModels[T]) -> tuple[T, ...]:
        return _all_or_none([models.replica(models.own(INDEPENDENT))])


@THREATS.register("ensemble")
class Ensemble(ThreatModel):
    description = "the logit average of M, the attacker's own dense model and the replica"

    def sources(self, models: AttackerModels[T]) -> tuple[T, ...]:
        replica = models.replica(models.own(DENSE))
        return _all_or_none([models.own(DENSE), models.own(INDEPENDENT), replica])


def _all_or_none(models: list[T | None]) -> tuple[T, ...]:
    """Every model, or none where one cannot be built for this target."""
    return () if any(m is None for m in models) else tuple(m for m in models if m is not None)


_SIZED_REPLICAS = re.compile(r"replicas-([1-9][0-9]*)")


def threat_model(name: str, param: str = "threat_models") -> ThreatModel:
    """The threat model ``name`` names: a registered one, or ``replicas-K`` (K >= 2)."""
    sized = _SIZED_REPLICAS.fullmatch(name) if isinstance(name, str) else None
    if sized is not None and int(sized.group(1)) >= 2:
        return Replicas(int(sized.group(1)))
    if not isinstance(name, str) or name not in THREATS:
        known = [*THREATS.names(), "replicas-K (K >= 2)"]
        raise ParameterError(
            f"{param}: unknown {name!r}{did_you_mean(str(name), THREATS.names())}; known: {known}"
        )
    return THREATS.get(name)()


def check_threat_model(threat: object, param: str) -> str:
    """``threat`` if it names a threat model (``replicas-K`` with K >= 2 included)."""
    threat_model(threat, param)  # type: ignore[arg-type]
    return str(threat)
