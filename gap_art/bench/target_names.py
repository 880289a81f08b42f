"""The names of the targets a study builds, known from its configuration before it runs: the
pruned targets of a method at a ratio, the epochs chosen from training curves, and the whole
list. The study's graph names its tasks with them, and the primary comparisons
(:mod:`gap_art.bench.comparisons`, report-only) name targets with them."""

from __future__ import annotations

from gap_art.bench.config import BenchConfig
from gap_art.defences.art_builtin import ART_DEFENCES, TrainedDefence
from gap_art.defences.methods import needs_attack, parse_method
from gap_art.settings import MethodSpec


def pruned_target_names(config: BenchConfig, method: str, ratio: float) -> list[str]:
    """The names of the pruned targets ``method`` builds at ``ratio``: ``<method>@<ratio>x``, or
    one per GAP budget (``<method>[eps=E]@<ratio>x``) when several run, in the order of
    :meth:`BenchConfig.gap_budgets`."""
    at = f"@{ratio:g}x"
    budgets = config.gap_budgets()
    if len(budgets) == 1 or not needs_attack(parse_method(method, "methods")):
        return [method + at]
    return [f"{method}[eps={eps:g}]{at}" for eps, _ in budgets]


PICK = "~"
"""Separates a curve target's name from the clean-accuracy cost its epoch was chosen within."""


def pick_name(target: str, budget: float) -> str:
    """The target an epoch of ``target``'s training curve gives within ``budget`` (``~2pt``)."""
    return f"{target}{PICK}{100 * budget:g}pt"


def records_curve(config: BenchConfig, method: MethodSpec | str) -> bool:
    """Whether the targets of ``method`` (its settings, or an ART defence's name) record their
    full training curve: with ``training_curves``, the hardened and pretrained methods, whose
    training is the defence, and ART's adversarial trainers."""
    if isinstance(method, MethodSpec):
        return config.training_curves and (method.hardening is not None or method.pretraining is not None)
    defence = ART_DEFENCES.get(method)
    return config.training_curves and issubclass(defence, TrainedDefence) and defence.adversarial


def planned_targets(config: BenchConfig) -> list[str]:
    """The names of the targets a study of ``config`` builds in every seed: the dense model,
    each method's pruned models, their int8 versions, ART's defences and the epochs chosen from
    training curves (for ``gap-art evaluate``: the dense model and the user's files)."""
    if config.targets is not None:
        return ["dense", *config.targets]
    pruned = [
        (name, parse_method(m, "methods"))
        for m in config.methods
        for r in config.compression
        for name in pruned_target_names(config, m, r)
    ]
    floats = ["dense", *(name for name, _ in pruned)]
    int8 = [f"{name}+int8" for name in floats] if config.int8 else []
    art = [(f"art:{defence}", defence) for defence in config.defences]
    named: list[tuple[str, MethodSpec | str]] = [*pruned, *art]
    curves = [name for name, method in named if records_curve(config, method)]
    picks = [pick_name(name, budget) for name in curves for budget in config.curve_budgets]
    return [*floats, *int8, *(name for name, _ in art), *picks]
