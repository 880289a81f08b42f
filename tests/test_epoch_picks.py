"""Choosing an epoch of a training curve within a clean-accuracy budget on validation (issue 37):
the rule alone; tests/test_hardening.py runs it in a study."""

from __future__ import annotations

import pytest

from gap_art.bench import BenchConfig, ConfigError, Goal
from gap_art.bench.epoch_picks import choose_epoch, worst_transfer
from gap_art.bench.target_names import pick_name
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


def _row(target: str, seed: int, clean: float, transfer: float, worst: float, family: str = "pruning"):
    """One results row: test clean and worst-attacker accuracy, the validation point beside."""
    at = target.split("~")[0]
    ratio = float(at.split("@")[1][:-1]) if "@" in at else 1.0
    return {"target": target, "family": family, "seed": seed, "eps": 0.1, "attack": "pgd",
            "threat_model": "dense", "requested_compression": ratio, "clean_accuracy": clean,
            "transfer_accuracy": worst, "worst_attacker_transfer_accuracy": worst, "gap_eps": None,
            "validation_clean_accuracy": clean, "validation_transfer_accuracy": transfer}  # fmt: skip


def test_the_frontier_goal_reads_the_points_validation_chooses_at_each_clean_cost():
    """Within each cost, the point validation chooses among the method's targets at the goal's
    ratio (its kept model and the epochs picked from its curve), scored on test, against its
    least and the best of ART's references there (paired over seeds)."""
    from gap_art.bench.goal import Goal, check_goal

    seeds = (0, 1, 2)
    rows = [_row("dense", s, 0.90, 0.1, 0.0, "baseline") for s in seeds]
    rows += [_row("magnitude+pool@4x", s, 0.86, 0.5, 0.40) for s in seeds]
    rows += [_row("magnitude+pool@4x~2pt", s, 0.885, 0.3, 0.30) for s in seeds]
    rows += [_row("magnitude+pool@1.01x", s, 0.89, 0.9, 0.90) for s in seeds]  # another ratio: not the goal's
    rows += [_row("art:fbf", s, 0.87, 0.6, 0.35 + 0.01 * s, "art_defence") for s in seeds]
    rows += [_row("art:ensemble-adv", s, 0.81, 0.7, 0.50, "art_defence") for s in seeds]
    frontier = {"0.02": 0.0, "0.05": 0.5, "0.10": 0.0}
    goal = Goal("f", frontier=frontier, methods=("magnitude+pool",), baselines=(),
                references=("art:fbf", "art:ensemble-adv"))  # fmt: skip
    clauses = {c.clause: c for c in check_goal(goal, rows, 0.1)}
    label = "points, chosen on validation: worst-attacker accuracy"
    assert clauses[f"within 2 {label} at or above ART's best there"].status == "open"  # no reference there
    least = clauses[f"within 5 {label} >= 0.50"]
    assert (least.status, least.distance) == ("missed", "0.400 (-0.100)")  # the kept model, not the pick
    above = clauses[f"within 5 {label} at or above ART's best there"]
    assert above.status == "met" and "art:fbf 0.360" in above.distance
    beaten = clauses[f"within 10 {label} at or above ART's best there"]
    assert beaten.status == "missed" and "art:ensemble-adv 0.500 (-0.100" in beaten.distance
    with pytest.raises(ValueError, match="frontier"):
        Goal("f", frontier={"five": 0.5})


def test_the_shipped_frontier_goal_loads():
    from pathlib import Path

    goal = Goal.load(Path(__file__).parents[1] / "benchmarks" / "goals" / "frontier.toml")
    assert goal.references and goal.frontier and max(goal.frontier.values()) == 0.5


def test_a_primary_comparison_may_name_an_epoch_picked_before_the_run():
    from gap_art.bench import preset
    from gap_art.bench.target_names import planned_targets

    config = preset("quick")
    config.methods, config.defences, config.compression = ["magnitude", "magnitude+tat"], ["fbf"], [4.0]
    config.training_curves, config.curve_budgets = True, [0.02]
    assert {"magnitude+tat@4x~2pt", "art:fbf~2pt"} <= set(planned_targets(config))
    assert "magnitude@4x~2pt" not in planned_targets(config)  # no curve: its training is not the defence
    config.primary = ["magnitude+tat@4x~2pt vs art:fbf~2pt: worst attacker"]
    assert config.validate(files=False).primary
