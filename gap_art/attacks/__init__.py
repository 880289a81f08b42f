"""Attacks by name from torchattacks or ART, behind one small adapter class.

No attack is implemented here: :func:`make_attack` builds a ``torchattacks`` or ART
attack for an ART classifier, honouring its ``clip_values`` and preprocessing, and wraps it
in an :class:`AttackAdapter` with numpy (``generate``) and torch (``craft``) entry points.
"""

from gap_art.attacks.adapters import (
    ATTACK_NAMES,
    BACKENDS,
    ARTAttack,
    AttackAdapter,
    TorchattacksAttack,
    make_attack,
)

__all__ = [
    "ATTACK_NAMES",
    "BACKENDS",
    "ARTAttack",
    "AttackAdapter",
    "TorchattacksAttack",
    "make_attack",
]
