"""Which attack plays which part in a study: the primary one, the white-box-only ones, and how
reports name each."""

from __future__ import annotations

from gap_art.attacks import ATTACKS
from gap_art.bench.config import BenchConfig


def whitebox_only(config: BenchConfig) -> list[str]:
    """White-box attacks not among ``attacks``: each runs white-box and from the dense model only."""
    return [a for a in config.whitebox_attacks if a not in config.attacks]


def attack_label(attack: str, config: BenchConfig) -> str:
    """How reports name an attack: as its recipe says (an L2 attack with its norm and the
    study's margin, ``CW (L2, kappa 0)``); a name no installed recipe registers, upper-cased."""
    return ATTACKS.get(attack).label(config.cw_kappa) if attack in ATTACKS else attack.upper()


def primary_attack(config: BenchConfig) -> str:
    """The attack the fine-tuning curves, security curves and summaries use: PGD if studied."""
    return "pgd" if "pgd" in config.attacks else config.attacks[0]
