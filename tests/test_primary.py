"""Pre-registered primary comparisons: named before the run, tested across seeds (the seed is
the unit of replication), Holm-corrected over their own family only."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from gap_art.bench import BenchConfig, preset
from gap_art.bench.config import ConfigError
from gap_art.bench.primary import Comparison, compare_across_seeds, primary_comparisons, primary_results
from gap_art.cli import main
from gap_art.evaluation.metrics import paired_t_test

EPS = 0.1


def _rows(scores: dict[str, list[float]], attack: str = "pgd") -> list[dict]:
    """One PGD-from-dense row per target and seed, with the given transfer accuracies."""
    return [
        {"target": target, "seed": seed, "eps": EPS, "attack": attack, "threat_model": "dense",
         "transfer_accuracy": value, "worst_attacker_transfer_accuracy": value, "error": None}
        for target, values in scores.items()
        for seed, value in enumerate(values)
    ]  # fmt: skip


def _config(methods: list[str], seeds: int = 5, **settings) -> BenchConfig:
    return BenchConfig(methods=methods, compression=[4.0], attacks=["pgd"], defences=[], eps=EPS,
                       seeds=list(range(seeds)), **settings)  # fmt: skip


@pytest.mark.parametrize("name", ["fashion", "harden", "pool"])
def test_a_consistent_effect_reaches_the_family_alpha_with_the_presets_seeds(name):
    """Two points better in every seed, steady to a tenth of a point: significant after Holm over
    the preset's whole primary family, with the preset's seeds (the worst case of Holm: the
    family's size times p). An exact sign-flip test could not: over 5 seeds its smallest
    two-sided p is 1/16, over 3 seeds 1/4."""
    config = preset(name)
    family, seeds = len(primary_comparisons(config)), len(config.seeds)
    differences = 0.02 + 0.001 * np.linspace(-1, 1, seeds)
    p = paired_t_test(differences.tolist()).p_value
    assert family > 1 and p is not None and family * p < 0.05
    assert 2 / 2**seeds > 0.05 / family  # what a sign-flip test could reach at best


def test_the_seed_test_says_nothing_from_one_seed_and_handles_no_spread():
    assert paired_t_test([0.1]).p_value is None
    assert paired_t_test([0.05, 0.05, 0.05]).p_value == 0.0
    assert paired_t_test([0.0, 0.0]).p_value == 1.0
    noisy = paired_t_test([0.05, -0.04, 0.01, -0.02])
    assert noisy.p_value is not None and noisy.p_value > 0.5 and noisy.low < 0 < noisy.high


def test_adding_a_method_changes_no_primary_comparisons_adjusted_p():
    """The family is what the config names (or its methods' default family): another method in
    the study, a baseline or one more GAP criterion, leaves every adjusted p-value as it was."""
    scores = {
        "gap-grad@4x": [0.50, 0.52, 0.49, 0.55, 0.51],
        "random@4x": [0.45, 0.47, 0.46, 0.48, 0.44],
        "magnitude@4x": [0.30, 0.35, 0.28, 0.33, 0.31],
    }
    before = primary_results(_rows(scores), _config(["gap-grad", "random", "magnitude"]))
    more = {**scores, "taylor@4x": [0.2] * 5, "gap-taylor@4x": [0.9, 0.1, 0.8, 0.2, 0.5]}
    named = [str(r.comparison) for r in before]
    methods = ["gap-grad", "random", "magnitude", "taylor", "gap-taylor"]
    after = primary_results(_rows(more), _config(methods, primary=named))
    assert [r.p_holm for r in after] == [r.p_holm for r in before]
    with_baseline = primary_results(_rows(more), _config(["gap-grad", "random", "magnitude", "taylor"]))
    assert [r.p_holm for r in with_baseline] == [r.p_holm for r in before]
    assert [r.outcome for r in before] == ["better", "better"]


def test_the_outcome_follows_the_sign_and_flags_take_away_the_conclusion():
    scores = {"gap-grad@4x": [0.30, 0.31, 0.29], "random@4x": [0.40, 0.42, 0.41], "magnitude@4x": [0.3] * 3}
    rows = _rows(scores)
    (worse, same) = primary_results(rows, _config(["gap-grad", "random", "magnitude"], seeds=3))
    assert worse.outcome == "worse" and worse.mean_difference < 0
    assert same.outcome == "no significant difference"
    for row in rows:
        if row["target"] == "random@4x" and row["seed"] == 2:
            row["collapsed_classes"] = [3]
    (flagged, _) = primary_results(rows, _config(["gap-grad", "random", "magnitude"], seeds=3))
    assert flagged.outcome == "flagged" and flagged.reason == "random@4x: a collapsed class in seed(s) 2"


def test_an_untested_comparison_counts_as_p_one_in_the_family():
    """One seed of a comparison missing a target still counts in the family's size, so a study
    whose cell failed is not held to a looser threshold."""
    scores = {"gap-grad@4x": [0.50, 0.52, 0.49], "random@4x": [0.40, 0.41, 0.40]}
    tested = Comparison("gap-grad@4x", "random@4x", "pgd")
    untested = Comparison("gap-grad@4x", "magnitude@4x", "pgd")
    alone, pair = (
        compare_across_seeds(_rows(scores), family, EPS) for family in ([tested], [tested, untested])
    )
    assert pair[1].outcome == "untested" and "no cell of magnitude@4x" in pair[1].reason
    assert pair[0].p_holm == pytest.approx(min(1.0, 2 * alone[0].p_holm))


def test_the_worst_attacker_score_reads_the_lowest_over_attackers():
    rows = _rows({"magnitude+tat@4x": [0.6, 0.62], "magnitude@4x": [0.2, 0.21]})
    for row in rows:
        row["worst_attacker_transfer_accuracy"] -= 0.1
    (result,) = compare_across_seeds(rows, [Comparison("magnitude+tat@4x", "magnitude@4x")], EPS)
    assert result.first_scores == pytest.approx((0.5, 0.52))
    assert str(result.comparison) == "magnitude+tat@4x vs magnitude@4x: worst attacker"


def test_the_presets_default_families_are_the_issues():
    """fashion: each GAP criterion against random and magnitude at each ratio under PGD from the
    dense model; harden: each hardening against its unhardened base and ART's trainers under the
    worst attacker (and GAP against the baselines)."""
    fashion = [str(c) for c in primary_comparisons(preset("fashion"))]
    assert fashion == [
        f"{gap}[eps={eps}]@{r}x vs {b}@{r}x: pgd from dense"
        for gap in ("gap-grad", "gap-taylor")
        for r in (2, 4, 8)
        for eps in ("0.00784", "0.15")  # GAP at the reference's 2/255 and at the attack's eps
        for b in ("random", "magnitude")
    ]
    for name in ("harden", "harden-quick"):  # GAP at two budgets, then at the reference's only
        harden = [str(c) for c in primary_comparisons(preset(name))]
        at = ["[eps=0.00784]", "[eps=0.15]"] if name == "harden" else [""]
        for hardened, base, budgets in (
            ("magnitude+pool", "magnitude", [""]),
            ("gap-grad+tat", "gap-grad", at),
        ):
            for eps in budgets:  # each hardened GAP target against its base at its own budget
                for other in (f"{base}{eps}@4x", "art:fbf", "art:ensemble-adv"):
                    assert f"{hardened}{eps}@4x vs {other}: worst attacker" in harden
        assert "ensemble-adv>magnitude@4x vs magnitude@4x: worst attacker" in harden
        assert f"gap-grad{at[-1]}@4x vs random@4x: pgd from dense" in harden
        # 2 GAP methods x 2 baselines and 6 hardenings x (base, fbf, ensemble-adv), per GAP budget
        assert len(harden) == len(set(harden)) == {"harden": 32, "harden-quick": 22}[name]
    crossed = "gap-grad+tat[eps=0.15]@4x vs gap-grad[eps=0.00784]@4x: worst attacker"
    assert crossed not in [str(c) for c in primary_comparisons(preset("harden"))]


@pytest.mark.parametrize(
    "spelling, message",
    [
        ("gap-grad@4x random@4x", "is not a comparison"),
        ("gap-grad@4x vs random@4x: pgd", "does not say what is compared"),
        ("gap-grad@4x vs random@2x: pgd from dense", "'random@2x', not a target of this study"),
        ("gap-grad@4x vs random@4x: fgsm from dense", "attack 'fgsm', not among attacks"),
        ("gap-grad@4x vs random@4x: pgd from replica", "attacker 'replica', not among threat_models"),
        ("gap-grad@4x vs gap-grad@4x: worst attacker", "two different targets"),
    ],
)
def test_a_bad_comparison_is_a_usage_error_naming_primary(spelling, message):
    with pytest.raises(ConfigError, match="primary") as error:
        _config(["gap-grad", "random"], primary=[spelling]).validate(files=False)
    assert message in str(error.value)
    command = ["bench", "--preset", "quick", "--compression", "4", "--attacks", "pgd", "--primary", spelling]
    out = CliRunner().invoke(main, command)
    assert out.exit_code == 2 and "primary" in out.output and "Traceback" not in out.output


def compare_across_seeds_round_trip_through_their_spelling():
    for text in ("magnitude+tat@4x vs art:fbf: worst attacker", "art:fbf vs magnitude@4x: pgd from robust"):
        assert str(Comparison.parse(text)) == text


def test_results_json_records_the_family_before_any_reader_needs_the_config(small_study):
    document = json.loads((small_study.out / "results.json").read_text())
    recorded = [entry["comparison"] for entry in document["primary_comparisons"]]
    config = BenchConfig.from_dict(document["config"], files=False)
    assert recorded == [str(c) for c in primary_comparisons(config)] and recorded
    assert all(entry["outcome"] == "untested" for entry in document["primary_comparisons"])  # one seed


def test_the_dry_run_names_the_family_before_anything_runs():
    out = CliRunner().invoke(main, ["bench", "--preset", "fashion", "--dry-run"])
    assert out.exit_code == 0, out.output
    planned = json.loads(out.output)["primary_comparisons"]
    assert planned == [str(c) for c in primary_comparisons(preset("fashion"))] and len(planned) == 24
