"""Each method's settings in a study: the typed :class:`~gap_art.settings.MethodSpec` of a
``--methods`` name at one ratio and seed, with the study's fine-tuning, calibration and
hardening budgets."""

from __future__ import annotations

from dataclasses import replace

from gap_art.bench.config import BenchConfig
from gap_art.defences.methods import needs_attack, parse_method
from gap_art.models.registry import model_recipe
from gap_art.settings import WEIGHTS, AttackSpec, FinetuneSpec, MethodSpec, gap_calibration_attack


def finetune_spec(config: BenchConfig, seed: int) -> FinetuneSpec:
    """How the study fine-tunes every pruned model: its epochs and patience, with the
    optimizer the architecture trains with (at the fine-tuning learning rate)."""
    return FinetuneSpec(
        config.finetune_epochs,
        config.finetune_patience,
        config.validation_fraction,
        optimizer=model_recipe(config.arch),
        seed=seed,
    )


def method_specs(config: BenchConfig, method: str, ratio: float, seed: int) -> list[MethodSpec]:
    """The settings of ``method`` at ``ratio`` as ``config`` says: one spec per GAP budget
    (one for criteria without an attack)."""
    parsed = parse_method(method, "methods")
    spec = replace(
        parsed,
        compression=float(ratio),
        rounds=config.rounds if parsed.iterative else 1,
        prune_classifier=config.prune_classifier and parsed.structure == WEIGHTS,
        n_calibration=config.n_calibration,
        finetune=finetune_spec(config, seed),
        hardening_attack=AttackSpec(eps=config.attack_eps),
        seed=seed,
    )
    if not needs_attack(spec):
        return [spec]
    return [
        replace(spec, calibration_attack=gap_calibration_attack(*budget)) for budget in config.gap_budgets()
    ]
