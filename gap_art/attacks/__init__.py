"""Attacks by name from torchattacks or ART: one module per attack, one registry.

No attack is implemented here: :func:`make_attack` builds a registered ``torchattacks`` or
ART attack for an ART classifier, honouring its ``clip_values`` and preprocessing, and wraps
it in an :class:`AttackAdapter` with numpy (``generate``) and torch (``craft``) entry points.
Add an attack with ``@gap_art.attacks.register("name")`` on an :class:`AttackRecipe`
subclass (or through the ``gap_art.attacks`` entry-point group).
"""

from gap_art.attacks.base import (
    ATTACKS,
    ARTAttack,
    AttackAdapter,
    AttackRecipe,
    AttackSettings,
    TorchattacksAttack,
    check_backend,
    is_linf,
    register,
)
from gap_art.attacks.factory import attack_names, build_attack, clip_range, make_attack
from gap_art.registry import import_submodules
from gap_art.settings import BACKENDS, AttackSpec, default_eps_step

import_submodules(__name__, __path__)  # every attack module (pgd.py, cw.py, ...) registers itself

__all__ = [
    "ATTACKS",
    "BACKENDS",
    "ARTAttack",
    "AttackAdapter",
    "AttackRecipe",
    "AttackSettings",
    "AttackSpec",
    "TorchattacksAttack",
    "attack_names",
    "build_attack",
    "check_backend",
    "clip_range",
    "default_eps_step",
    "is_linf",
    "make_attack",
    "register",
]
