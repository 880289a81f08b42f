"""What a ``+pool`` target trains against beside M: one small registered class per kind of pool
source (:data:`POOL_SOURCES`; a plugin adds one with ``@POOL_SOURCES.register("name")`` or the
``gap_art.pool_sources`` entry-point group). Each builds its members from a :class:`PoolModels`
the study gives it; every source keeps its own seed in any pool, so an ablation of the pool's
composition changes the mix and nothing else. A pool lists its sources in registration order."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, Protocol, TypeVar

from gap_art.registry import Registry

T = TypeVar("T")


class PoolModels(Protocol[T]):
    """What a pool source builds its members with, for one ``+pool`` target."""

    replicas: int
    """How many own replicas ``replicas`` means (the study's ``pool_replicas``)."""

    def seed(self, offset: int) -> int:
        """The pool seed ``offset`` of the target's seed (the same in any pool)."""
        ...

    def hardened_replica(self, seed: int) -> T:
        """The target's method run with ``seed``, hardened with ``+tat`` instead of ``+pool``."""
        ...

    def dense(self, seed: int, other_arch: bool = False) -> T:
        """An independently trained dense model (of another architecture with ``other_arch``)."""
        ...

    def robust(self, seed: int) -> T:
        """M adversarially trained by ART's ``robust_defence`` with ``seed``."""
        ...

    def pipeline_replica(self, seed: int, pool: tuple[T, ...]) -> T:
        """The ``+pool`` pipeline itself run with ``seed``, trained against ``pool``."""
        ...


class PoolSource(ABC):
    """One kind of model a ``+pool`` target trains against."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    second_round: ClassVar[bool] = False
    """Built after the others and trained against them (the bootstrap replica)."""

    @abstractmethod
    def members(self, models: PoolModels[T], first_round: tuple[T, ...]) -> tuple[T, ...]:
        """This source's models in the pool; ``first_round`` holds the sources built before it
        (empty for a first-round source)."""


POOL_SOURCES: Registry[type[PoolSource]] = Registry("pool source", "gap_art.pool_sources")


@POOL_SOURCES.register("replicas")
class OwnReplicas(PoolSource):
    description = "pool_replicas of the target's method hardened with +tat instead (pool seeds 0 to K-1)"

    def members(self, models: PoolModels[T], first_round: tuple[T, ...]) -> tuple[T, ...]:
        return tuple(models.hardened_replica(models.seed(m)) for m in range(models.replicas))


@POOL_SOURCES.register("bootstrap")
class Bootstrap(PoolSource):
    description = "one replica of the +pool pipeline itself, trained against the other sources"
    second_round = True

    def members(self, models: PoolModels[T], first_round: tuple[T, ...]) -> tuple[T, ...]:
        return (models.pipeline_replica(models.seed(models.replicas + 2), first_round),)


@POOL_SOURCES.register("independent")
class IndependentDense(PoolSource):
    description = "an independently trained dense model of our architecture"

    def members(self, models: PoolModels[T], first_round: tuple[T, ...]) -> tuple[T, ...]:
        return (models.dense(models.seed(models.replicas)),)


@POOL_SOURCES.register("robust")
class RobustDense(PoolSource):
    description = "M adversarially trained by ART (robust_defence)"

    def members(self, models: PoolModels[T], first_round: tuple[T, ...]) -> tuple[T, ...]:
        return (models.robust(models.seed(models.replicas + 1)),)


@POOL_SOURCES.register("independent-arch")
class IndependentArchDense(PoolSource):
    description = "an independently trained dense model of another architecture (independent_arch)"

    def members(self, models: PoolModels[T], first_round: tuple[T, ...]) -> tuple[T, ...]:
        return (models.dense(models.seed(models.replicas + 3), other_arch=True),)


def build_pool(models: PoolModels[T], chosen: list[str]) -> tuple[T, ...]:
    """The pool of the ``chosen`` sources, in registration order: the first-round sources, then
    each second-round source trained against them."""
    kinds = [(name, cls()) for name, cls in POOL_SOURCES if name in chosen]
    built = {name: kind.members(models, ()) for name, kind in kinds if not kind.second_round}
    first_round = tuple(member for members in built.values() for member in members)
    for name, kind in kinds:
        if kind.second_round:
            built[name] = kind.members(models, first_round)
    return tuple(member for name, _ in kinds for member in built[name])
