"""Choosing an epoch of a training curve within a clean-accuracy budget on validation (issue 37):
the rule alone; tests/test_hardening.py runs it in a study."""

from __future__ import annotations

import pytest

from gap_art.bench import BenchConfig, ConfigError
from gap_art.bench.epoch_picks import choose_epoch, pick_name, worst_transfer
from gap_art.bench.task_results import SourceCurve

CURVE = [(0, 0.90, 0.30), (1, 0.86, 0.50), (2, 0.84, 0.70), (3, 0.80, 0.75)]
"""``[epoch, clean, transfer from the dense model]`` on validation."""
SOURCES = [SourceCurve("replica", (0.40, 0.45, 0.60, None)), SourceCurve("independent", (0.5, 0.6, 0.9, 0.9))]


def test_the_worst_source_is_the_lowest_recorded_at_each_epoch():
    assert worst_transfer(CURVE, SOURCES) == [0.30, 0.45, 0.60, 0.75]  # None: no replica then


@pytest.mark.parametrize(
    "level, epoch", [(0.85, 1), (0.83, 2), (0.79, 3), (0.95, None)], ids=["5pt", "7pt", "11pt", "none"]
)
def test_validation_picks_the_most_robust_epoch_within_the_budget(level, epoch):
    assert choose_epoch(CURVE, SOURCES, level) == epoch


def test_ties_go_to_the_higher_clean_accuracy_then_the_earlier_epoch():
    flat = [(0, 0.9, 0.5), (1, 0.9, 0.5), (2, 0.95, 0.5)]
    assert choose_epoch(flat, [], 0.8) == 2
    assert choose_epoch(flat[:2], [], 0.8) == 0


def test_a_pick_is_named_by_its_budget_in_points():
    assert pick_name("gap-grad+tat@4x", 0.02) == "gap-grad+tat@4x~2pt"
    assert pick_name("art:fbf", 0.1) == "art:fbf~10pt"


def test_curve_budgets_need_training_curves_and_lie_between_0_and_1():
    with pytest.raises(ConfigError, match="training_curves"):
        BenchConfig(curve_budgets=[0.02]).validate(files=False)
    with pytest.raises(ConfigError, match="curve_budgets"):
        BenchConfig(curve_budgets=[2.0], training_curves=True).validate(files=False)
    assert BenchConfig(curve_budgets=[0.02, 0.1], training_curves=True).validate(files=False)
