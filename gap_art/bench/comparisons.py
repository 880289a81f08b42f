"""What a study's primary comparisons name, known before it runs: the spelling of a comparison
(:class:`Comparison`) and the default family of a study's methods, over the targets
:mod:`gap_art.bench.target_names` names. :mod:`gap_art.bench.primary` tests them across seeds
once the study has run. No task reads this module: an edit here keeps every cached model.

A comparison is spelled ``<target> vs <target>: <attack> from <attacker>`` (transfer accuracy
under one attack from one attacker) or ``<target> vs <target>: worst attacker`` (the lowest transfer accuracy
over every attacker and L-inf attack run), with target names as the report shows them
(``gap-grad@4x``, ``art:fbf``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gap_art.bench.attack_roles import primary_attack
from gap_art.bench.config import BenchConfig, ConfigError
from gap_art.bench.target_names import planned_targets, pruned_target_names
from gap_art.defences.art_builtin import ART_DEFENCES, TrainedDefence
from gap_art.defences.methods import needs_attack, parse_method
from gap_art.settings import CHANNEL, WEIGHTS

WORST = "worst attacker"
BASELINES = {
    WEIGHTS: ("random", "magnitude"),
    CHANNEL: ("random/channel", "magnitude/channel", "l1/channel", "l2/channel"),
}
"""What a GAP criterion is compared against by default, per structure (the study's own)."""


@dataclass(frozen=True)
class Comparison:
    """One primary comparison: is ``first`` more robust than ``second``?

    :param first: The target claimed robust (``gap-grad@4x``).
    :param second: What it is compared against (``random@4x``, ``art:fbf``).
    :param attack: The attack whose transfer accuracy is compared; ``None``: the worst
        attacker (the lowest over every attacker and L-inf attack the study ran).
    :param threat_model: Who crafts ``attack``'s examples (unused for the worst attacker).
    """

    first: str
    second: str
    attack: str | None = None
    threat_model: str = "dense"

    def __post_init__(self) -> None:
        if not self.first or not self.second or self.first == self.second:
            raise ConfigError(
                f"primary: a comparison needs two different targets, got {self.first!r} and {self.second!r}"
            )

    def __str__(self) -> str:
        scored = WORST if self.attack is None else f"{self.attack} from {self.threat_model}"
        return f"{self.first} vs {self.second}: {scored}"

    @classmethod
    def parse(cls, text: str) -> Comparison:
        """``<target> vs <target>: <attack> from <attacker>`` or ``<target> vs <target>: worst
        attacker``."""
        spelling = (
            "'<target> vs <target>: <attack> from <attacker>' or '<target> vs <target>: worst attacker'"
        )
        pair, colon, scored = str(text).rpartition(":")  # a target (art:fbf) may hold a colon
        names = [name.strip() for name in pair.split(" vs ")]
        if not colon or len(names) != 2:
            raise ConfigError(f"primary: {text!r} is not a comparison; write {spelling}")
        scored = " ".join(scored.split())
        if scored == WORST:
            return cls(names[0], names[1])
        attack, sep, threat = scored.partition(" from ")
        if not sep or not attack or not threat:
            raise ConfigError(f"primary: {text!r} does not say what is compared; write {spelling}")
        return cls(names[0], names[1], attack.strip(), threat.strip())

    def check(self, config: BenchConfig, targets: Sequence[str]) -> Comparison:
        """``self`` if the study of ``config`` (building ``targets``) can test it, else a
        :class:`ConfigError` naming what it lacks."""
        for name in (self.first, self.second):
            if name not in targets:
                raise ConfigError(
                    f"primary: {self} names {name!r}, not a target of this study; "
                    f"its targets: {list(targets)}"
                )
        if self.attack is not None and self.attack not in config.attacks:
            raise ConfigError(
                f"primary: {self} names attack {self.attack!r}, not among attacks {config.attacks}"
            )
        if self.attack is not None and self.threat_model not in config.threat_models:
            raise ConfigError(
                f"primary: {self} names attacker {self.threat_model!r}, not among threat_models "
                f"{config.threat_models}"
            )
        return self


def _hardened_base(method: str, methods: Sequence[str]) -> str | None:
    """The study's method that ``method`` is before its hardening or ART pretraining (``magnitude``
    for ``magnitude+tat`` and ``ensemble-adv>magnitude``), if the study runs it."""
    spec = parse_method(method, "methods")
    if spec.hardening is None and spec.pretraining is None:
        return None
    base = spec.__class__(spec.criterion, iterative=spec.iterative, structure=spec.structure).name
    return next((m for m in methods if parse_method(m, "methods").name == base), None)


def default_comparisons(config: BenchConfig) -> list[Comparison]:
    """The family a study tests when its config names none, from its methods alone: each
    unhardened GAP criterion against random and magnitude pruning (by channel: random, L1
    and L2, each the study runs) at each ratio, under the
    primary attack from the dense model; each hardened method (``+tat``, ``+gal``, ``+pool``,
    ``<defence>>``) against its unhardened base (GAP's at the same budget) and each of ART's
    adversarial trainers in the study, under the worst attacker."""
    if config.targets is not None:
        return []
    attack = primary_attack(config)
    trainers = [
        f"art:{name}"
        for name in config.defences
        if issubclass(cls := ART_DEFENCES.get(name), TrainedDefence) and cls.adversarial
    ]
    comparisons = []
    for method in config.methods:
        spec = parse_method(method, "methods")
        hardened = spec.hardening is not None or spec.pretraining is not None
        base = _hardened_base(method, config.methods)
        for ratio in config.compression:
            bases = pruned_target_names(config, base, ratio) if base else []
            baselines = [f"{b}@{ratio:g}x" for b in BASELINES[spec.structure] if b in config.methods]
            firsts = pruned_target_names(config, method, ratio)
            for i, first in enumerate(firsts):
                if hardened:  # a GAP base per budget: the hardened target's own budget only
                    own = bases[i : i + 1] if len(bases) == len(firsts) else bases
                    comparisons += [Comparison(first, other) for other in [*own, *trainers]]
                elif needs_attack(spec):
                    comparisons += [Comparison(first, other, attack) for other in baselines]
    return comparisons


def primary_comparisons(config: BenchConfig) -> list[Comparison]:
    """The study's primary family: its config's ``primary`` (each checked against the targets,
    attacks and attackers of the study), else :func:`default_comparisons`."""
    if config.primary is None:
        return default_comparisons(config)
    targets = planned_targets(config)
    return [Comparison.parse(text).check(config, targets) for text in config.primary]
