"""A comparison that cannot flatter GAP: the classifier layer kept, models looked inside,
fine-tuning to convergence, transfer at a clean-accuracy budget, paired statistics, and a
replica attacker built from our own dense model."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from gap_art.bench import BenchConfig, ConfigError, build_graph
from gap_art.bench.flags import add_collapse_flags
from gap_art.bench.summary import budget_table, select_within_budget, upper_envelope
from gap_art.bench.target_spec import size_fields
from gap_art.bench.targets import PrunedSpec
from gap_art.defences import pruning_defence
from gap_art.evaluation import class_recall, mcnemar_exact, t_interval
from gap_art.pruning import classifier_layer, excluded_layers, prunable_parameters, prune_by_scores
from gap_art.pruning import importance as criteria
from gap_art.settings import FinetuneSpec, MethodSpec
from gap_art.training import EarlyStopping


@pytest.mark.parametrize(
    "method", ["gap-grad", "gap-taylor", "gap-abs_grad", "random", "magnitude", "taylor", "activation"]
)
def test_every_method_keeps_the_classifier_layer_unless_asked(classifier, digits, method):
    x, y = digits.numpy("train")
    x, y = x[:256], y[:256]
    head = classifier.model.classifier[3]
    for prune_classifier, expected in ((False, 0), (True, None)):
        spec = MethodSpec(method, 4.0, prune_classifier=prune_classifier, seed=1)
        defence = pruning_defence(classifier, spec)
        defence.fit(x, y)
        pruned = defence(x, y=y).model
        zeros = int((pruned.classifier[3].weight == 0).sum())
        if expected == 0:
            assert zeros == 0 and defence.excluded_layers_ == ["classifier.3.weight"]
            assert defence.compression_report_.compression == pytest.approx(4.0, rel=1e-3)
        else:
            assert zeros > 0 and defence.excluded_layers_ == []
    assert int((head.weight == 0).sum()) == 0  # the source is never touched


def test_the_classifier_layer_is_found_by_mark_or_by_class_count():
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3), nn.Linear(3, 5))
    assert classifier_layer(model) is model[3]
    assert classifier_layer(model, nb_classes=3) is model[2]
    model[2].is_classifier = True
    assert classifier_layer(model, nb_classes=5) is model[2]
    assert [m for m, _ in prunable_parameters(model, nb_classes=5)] == [model[0], model[3]]
    assert excluded_layers(model, prunable_parameters(model)) == ["2.weight"]
    only_head = nn.Sequential(nn.Linear(4, 2))
    with pytest.raises(ValueError, match="prune_classifier=True"):
        prunable_parameters(only_head)
    scores = [torch.rand(2, 4)]
    assert prune_by_scores(only_head, scores, 2.0, prune_classifier=True).n_nonzero == 4


def test_recall_and_layer_sparsity_on_a_hand_made_model():
    model = nn.Sequential(nn.Linear(4, 4, bias=False), nn.Linear(4, 2, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]))
        model[1].weight.fill_(1.0)
    size = size_fields(model, False)
    assert size.layer_sparsity == {"0.weight": 0.875, "1.weight": 0.0}
    assert size.compression == pytest.approx(8.0)  # 16 weights, 2 left: the head is not prunable
    correct = np.array([True, False, True, True, False, False])
    labels = np.array([0, 0, 1, 1, 1, 2])
    assert class_recall(correct, labels, 4) == [0.5, pytest.approx(2 / 3), 0.0, None]


def test_collapsed_classes_are_flagged_against_the_dense_recall():
    rows = [
        {"seed": 0, "target": "dense", "class_recall": [0.9, 0.8, 1.0]},
        {"seed": 0, "target": "gap-grad@4x", "class_recall": [0.9, 0.3, 0.6]},
        {"seed": 0, "target": "random@4x", "class_recall": [0.5, 0.4, 0.5]},
    ]
    add_collapse_flags(rows)
    assert [r["collapsed_classes"] for r in rows] == [[], [1], []]


def test_the_collapse_flag_is_decided_on_validation_rows_and_reported_on_test_rows():
    """A class deleted in the test sample only (as class 6 of one seed's sample did) takes no
    target out of a "best": the validation rows decide; the test rows' verdict is reported."""
    support = [40] * 3
    dense = {"seed": 0, "target": "dense", "class_recall": [0.9] * 3, "class_support": support,
             "validation_class_recall": [0.9] * 3, "validation_class_support": support}  # fmt: skip
    test_only = {"seed": 0, "target": "random@4x", "class_recall": [0.9, 0, 0.9], "class_support": support,
                 "validation_class_recall": [0.9, 0.8, 0.9], "validation_class_support": support}  # fmt: skip
    validation_only = {**test_only, "target": "gap-grad@4x", "class_recall": [0.9] * 3,
                       "validation_class_recall": [0.0, 0.9, 0.9]}  # fmt: skip
    int8 = {"seed": 0, "target": "random@4x+int8", "class_recall": [0.9, 0.0, 0.9], "class_support": support}
    failed_cell = {"seed": 0, "target": "dense", "error": "crash"}  # a dense cell without recall
    add_collapse_flags([dense, failed_cell, test_only, validation_only, int8])
    assert (test_only["collapsed_classes"], test_only["collapsed_classes_test"]) == ([], [1])
    assert (validation_only["collapsed_classes"], validation_only["collapsed_classes_test"]) == ([0], [])
    assert int8["collapsed_classes"] == int8["collapsed_classes_test"] == [1]  # no validation rows: test


def test_the_collapse_flag_is_a_test_that_fires_for_a_deleted_class_not_for_shirt_noise():
    """Fashion-MNIST's shirt class (about 100 of 1,000 test examples) has a dense recall of 0.36
    to 0.66 across seeds: a model at 0.25 against a dense 0.55 is below half of it, yet within
    what its 100 examples allow. A class at recall 0 is deleted, even over 36 digits."""
    from gap_art.evaluation.metrics import recall_collapsed

    support = [100] * 10
    dense = {
        "seed": 0,
        "target": "dense",
        "class_recall": [0.9] * 6 + [0.55] + [0.9] * 3,
        "class_support": support,
    }
    noisy = {"seed": 0, "target": "gap-grad@4x", "class_recall": [0.9] * 6 + [0.25] + [0.9] * 3,
             "class_support": support}  # fmt: skip
    deleted = {"seed": 0, "target": "random@4x", "class_recall": [0.9] * 6 + [0.55, 0.9, 0.0, 0.9],
               "class_support": support}  # fmt: skip
    add_collapse_flags([dense, noisy, deleted])
    assert noisy["collapsed_classes"] == [] and deleted["collapsed_classes"] == [8]
    bare = [{k: v for k, v in row.items() if k != "class_support"} for row in (dense, noisy)]
    add_collapse_flags(bare)  # rows without class sizes: the bare "below half" threshold fires
    assert bare[1]["collapsed_classes"] == [6]
    assert recall_collapsed(0.0, 36, 0.95, 0.001) and not recall_collapsed(0.4, 36, 0.95, 0.001)
    # the exact binomial tail against half of the dense recall, as scipy computes it
    p = stats.binom.cdf(25, 100, 0.275)
    assert recall_collapsed(0.25, 100, 0.55, p * 1.01) and not recall_collapsed(0.25, 100, 0.55, p * 0.99)


def test_early_stopping_stops_and_restores_the_best_epoch():
    model = nn.Linear(2, 2)
    stopper = EarlyStopping(model, patience=2)
    weights = {}
    for epoch, score in enumerate([0.5, 0.7, 0.9, 0.8, 0.85, 0.95]):
        with torch.no_grad():
            model.weight.fill_(epoch)
        weights[epoch] = model.weight.clone()
        if stopper.update(epoch, score):
            break
    assert epoch == 4 and stopper.best_epoch == 2 and stopper.scores == [0.5, 0.7, 0.9, 0.8, 0.85]
    stopper.restore()
    assert torch.equal(model.weight, weights[2])


def test_finetuning_to_convergence_records_what_it_kept(classifier, digits):
    x, y = digits.numpy("train")
    defence = pruning_defence(classifier, MethodSpec("random", 8.0, finetune=FinetuneSpec(30, patience=2)))
    defence(x, y=y)
    record = defence.finetune_record_
    assert record.epochs_run < 30 and record.epochs_run - record.best_epoch == 2
    assert len(record.validation_accuracy) == record.epochs_run + 1
    assert record.validation_accuracy[record.best_epoch] == max(record.validation_accuracy)


def test_the_envelope_and_the_budget_selection_on_hand_made_points():
    points = [(0.70, 0.50), (0.80, 0.40), (0.90, 0.20), (0.85, 0.10), (0.95, 0.05)]
    assert upper_envelope(points) == [(0.70, 0.50), (0.80, 0.40), (0.90, 0.20), (0.95, 0.05)]
    kept = [(0.70, 0.50, 0.45), (0.80, 0.40, 0.42), (0.90, 0.20, 0.60)]  # (val clean, val transfer, test)
    assert select_within_budget(kept, 0.85) == pytest.approx(0.60)  # the only eligible model's test number
    assert select_within_budget(kept, 0.75) == pytest.approx(0.42)  # picked on validation, not on test
    assert select_within_budget(kept, 0.96) is None  # no model within the budget: no number


def test_the_budget_table_selects_on_validation_and_says_none_instead_of_substituting():
    def row(target, family, clean, transfer, validation, seed=0, **extra):
        common = {"attack": "pgd", "threat_model": "dense", "eps": 0.2, **extra}
        return {"seed": seed, "target": target, "family": family, "clean_accuracy": clean,
                "transfer_accuracy": transfer, "validation_clean_accuracy": validation[0],
                "validation_transfer_accuracy": validation[1], **common}  # fmt: skip

    rows = [
        row("dense", "baseline", 0.95, 0.01, (0.96, 0.02)),
        row("gap-grad@4x", "pruning", 0.80, 0.45, (0.87, 0.40)),
        row("gap-grad@2x", "pruning", 0.94, 0.20, (0.95, 0.25)),
        row("random@4x", "pruning", 0.85, 0.30, (0.90, 0.30)),
        row("magnitude+tat@4x", "pruning", 0.90, 0.95, (0.91, 0.96), transfer_exceeds_clean=True),
    ]
    budgets = (0.01, 0.03, 0.10)
    table = {(e["method"], e["budget"]): e for e in budget_table(rows, "pgd", 0.2, budgets=budgets)}
    assert table[("gap-grad", 0.01)]["mean"] == pytest.approx(0.20)  # only 2x is within a point on validation
    assert table[("random", 0.03)]["mean"] is None and table[("random", 0.03)]["values"] == [None]
    assert table[("random", 0.10)]["mean"] == pytest.approx(0.30)
    assert table[("gap-grad", 0.10)]["mean"] == pytest.approx(0.45)  # 4x wins on validation (0.40 > 0.25)
    assert table[("gap-grad", 0.10)]["best"] and not table[("random", 0.10)]["best"]
    assert ("magnitude+tat", 0.10) not in table  # label leaking never counts as robustness

    rows[2]["transfer_accuracy"] = 0.99  # a better test number changes the reported value only
    again = {(e["method"], e["budget"]): e for e in budget_table(rows, "pgd", 0.2, budgets=budgets)}
    assert again[("gap-grad", 0.10)]["mean"] == pytest.approx(0.45)


def test_mcnemar_against_a_hand_computed_table():
    # 2x2 table: both right 5, only first 6, only second 1, both wrong 3 -> n = 15
    first = np.array([1] * 5 + [1] * 6 + [0] * 1 + [0] * 3, dtype=bool)
    second = np.array([1] * 5 + [0] * 6 + [1] * 1 + [0] * 3, dtype=bool)
    test = mcnemar_exact(first, second)
    assert (test.only_first, test.only_second, test.n) == (6, 1, 15)
    assert test.difference == pytest.approx(5 / 15)
    assert test.p_value == pytest.approx(2 * (1 + 7) / 2**7)  # exact two-sided binomial, 7 discordant
    assert mcnemar_exact(first, first).p_value == 1.0


def test_t_interval_against_scipy():
    """The interval is scipy's to the last bit (its quantiles are cached per degrees of freedom,
    so reports that hold tens of thousands of intervals stay fast and their figures unchanged)."""
    values = [0.61, 0.55, 0.70]
    mean, low, high = t_interval(values)
    expected = stats.t.interval(0.95, 2, loc=np.mean(values), scale=stats.sem(values))
    assert (low, high) == pytest.approx(expected) and mean == pytest.approx(np.mean(values))
    rng = np.random.default_rng(0)
    for n in (2, 3, 5, 10):
        for confidence in (0.9, 0.95):
            drawn = list(np.round(rng.random(n), 3))
            exact = stats.t.interval(confidence, n - 1, loc=np.mean(drawn), scale=stats.sem(drawn))
            assert t_interval(drawn, confidence)[1:] == tuple(float(v) for v in exact)
    assert high - low > 2 * 1.96 * stats.sem(values)  # wider than the normal approximation
    assert t_interval([0.4]) == (0.4, 0.4, 0.4)


def test_the_replica_is_built_from_our_dense_model():
    config = BenchConfig(methods=["gap-grad"], compression=[4.0], attacks=["pgd"], defences=[], int8=False,
                         threat_models=["dense", "replica", "replica-independent", "ensemble"])  # fmt: skip
    graph = build_graph(config)
    sources = {
        t.spec.seed: t for t in graph.tasks.values() if t.kind == "source" and t.spec.arch == config.arch
    }
    ours, theirs = sources[0], next(t for s, t in sources.items() if s != 0)
    crafts = {t.spec.threat_model: t for t in graph.tasks.values() if t.kind == "craft"}
    replica = graph.tasks[crafts["replica"].deps[0]]
    assert replica.spec.method == "gap-grad" and replica.spec.requested_compression == 4.0
    assert replica.deps == (ours.id,) and replica.spec.seed != 0  # our M, the attacker's seed
    assert replica.spec.settings.seed == replica.spec.settings.finetune.seed == replica.spec.seed
    independent = graph.tasks[crafts["replica-independent"].deps[0]]
    assert independent.deps == (theirs.id,)
    assert crafts["ensemble"].deps == (ours.id, theirs.id, replica.id)


def test_gap_rows_carry_their_calibration_budget():
    config = BenchConfig(methods=["gap-grad", "random"], compression=[4.0], gap_eps=[0.01, 0.05], defences=[])
    specs = [t.spec for t in build_graph(config).tasks.values() if isinstance(t.spec, PrunedSpec)]
    budgets = {s.name: s.settings.calibration_attack for s in specs}
    gap = sorted((name, a.eps, a.eps_step) for name, a in budgets.items() if name.startswith("gap-grad"))
    assert gap == [("gap-grad[eps=0.01]@4x", 0.01, 0.0025), ("gap-grad[eps=0.05]@4x", 0.05, 0.0125)]
    assert budgets["random@4x"].eps is None  # random pruning crafts nothing
    default = BenchConfig().gap_budgets()
    assert default == [(pytest.approx(2 / 255), pytest.approx(0.001))]
    assert "gap-grad" in criteria.names(adversarial=True)


def test_no_model_selection_reads_the_test_examples(tmp_path, monkeypatch):
    """Building the targets (fine-tuning, early stopping, the curves, the hardenings, ART's
    trainers, the budget points) never touches the test examples: with them made unreadable
    inside every target build, the study keeps the same epochs and gets the same numbers, and
    its selection rows are the validation split, which no model trains on
    (``tests/test_splits.py`` instruments the training itself)."""
    from gap_art.bench import run
    from gap_art.bench.context import Context
    from gap_art.bench.target_spec import TargetSpec

    config = BenchConfig(
        methods=["gap-grad", "magnitude+tat"], compression=[4.0], attacks=["pgd"], defences=["fbf"],
        int8=False, n_test=120, epochs=3, finetune_epochs=4, finetune_patience=1, defence_epochs=2,
        sanity_checks=False,
    )  # fmt: skip
    reference = run(config, out=tmp_path / "reference", progress=False).rows

    building = run_target = TargetSpec.run

    def guarded(self, task, deps, ctx):
        monkeypatch.setattr(Context, "evaluation_set", forbidden)
        try:
            return run_target(self, task, deps, ctx)
        finally:
            monkeypatch.setattr(Context, "evaluation_set", original)

    def forbidden(self, *args):
        raise AssertionError("a target build read the test examples")

    original = Context.evaluation_set
    monkeypatch.setattr(TargetSpec, "run", guarded)
    shutil.copytree(tmp_path / "reference" / "cache", tmp_path / "guarded" / "cache",
                    ignore=shutil.ignore_patterns("target-*"))  # fmt: skip  # every target is built again
    guarded_rows = run(config, out=tmp_path / "guarded", progress=False).rows
    monkeypatch.setattr(TargetSpec, "run", building)
    assert not [r for r in guarded_rows if r.get("error")]
    keys = ("finetune_best_epoch", "finetune_epochs_run", "validation_clean_accuracy", "transfer_accuracy")
    assert [[r.get(k) for k in keys] for r in guarded_rows] == [[r.get(k) for k in keys] for r in reference]
    assert any(r.get("validation_clean_accuracy") is not None for r in reference if r["family"] == "pruning")

    data = Context(config, None).data  # type: ignore[arg-type]
    assert data.validation is not None and data.splits["validation"].source == "train"


def test_each_seed_draws_its_own_test_sample_and_the_attacker_its_own_seeds():
    from gap_art.bench.context import Context
    from gap_art.bench.seeds import attacker_seed
    from gap_art.bench.tasks import CellSpec, CraftSpec
    from gap_art.data.splits import VALIDATION

    config = BenchConfig(methods=["gap-grad"], compression=[4.0], attacks=["pgd"], defences=[], int8=False,
                         seeds=[0, 1], n_test=100, threat_models=["dense", "replica"])  # fmt: skip
    context = Context(config, None)  # type: ignore[arg-type]
    first, second = context.evaluation_set(0)[0], context.evaluation_set(1)[0]
    assert len(first) == len(second) == 100 and not np.array_equal(first, second)
    assert np.array_equal(first, context.evaluation_set(0)[0])  # seeded: the same sample again

    graph = build_graph(config)
    crafts = [t.spec for t in graph.tasks.values() if isinstance(t.spec, CraftSpec)]
    attacking = [c for c in crafts if c.split != VALIDATION]
    assert attacking and all(c.attack.seed == attacker_seed(c.seed) != c.seed for c in attacking)
    selecting = [c for c in crafts if c.split == VALIDATION]
    assert {c.seed for c in selecting} == {0, 1} and all(c.attack.seed == c.seed for c in selecting)
    cells = [t.spec for t in graph.cells]
    assert all(isinstance(c, CellSpec) and c.attack.seed == attacker_seed(c.seed) for c in cells)


def test_cw_with_a_confidence_margin_runs_on_art_and_is_labelled_as_l2():
    from gap_art.bench.attack_roles import attack_label
    from gap_art.bench.tasks import CraftSpec

    config = BenchConfig(
        methods=["random"], compression=[4.0], attacks=["pgd", "cw"], defences=[], int8=False, cw_kappa=20.0
    )
    crafts = [t.spec for t in build_graph(config).tasks.values() if isinstance(t.spec, CraftSpec)]
    kappas = {c.attack.attack: (c.attack.kappa, c.attack.backend) for c in crafts}
    # torchattacks' CW ignores kappa; the default white-box Auto-PGD takes no margin
    assert kappas == {"pgd": (None, "torchattacks"), "cw": (20.0, "art"), "apgd-dlr": (None, "torchattacks")}
    assert attack_label("cw", config) == "CW (L2, kappa 20)" and attack_label("pgd", config) == "PGD"
    with pytest.raises(ConfigError, match=r"cw_kappa must be in \[0.0"):
        BenchConfig.from_dict({"cw_kappa": -1.0})


def test_transfer_results_give_the_examples_median_sizes(classifier, digits):
    from gap_art.evaluation import evaluate_transfer

    x, y = digits.numpy("test")
    (result,) = evaluate_transfer(classifier, {"self": classifier}, x[:40], y[:40], "cw", progress=False)
    assert result.l2_median > 0 and 0 < result.linf_median <= 1.0
    assert {"l2_median", "linf_median"} <= set(result.to_dict())
    with pytest.raises(ValueError, match="no effect on torchattacks' CW"):
        evaluate_transfer(classifier, classifier, x[:4], y[:4], "cw", progress=False, kappa=20.0)


def test_a_target_whose_gradients_hide_what_transfer_finds_is_flagged():
    from gap_art.bench.flags import MASKING, add_masking_flags

    def row(target, attack, threat, transfer, whitebox=None, low=None):
        mode = "direct (torchattacks)" if whitebox is not None else None
        return {"seed": 0, "target": target, "attack": attack, "threat_model": threat, "eps": 0.2,
                "transfer_accuracy": transfer, "whitebox_accuracy": whitebox, "whitebox_accuracy_ci_low": low,
                "whitebox_mode": mode, "trustworthy": True, "sanity_failures": []}  # fmt: skip

    rows = [
        row("masked@4x", "pgd", "dense", 0.30, whitebox=0.60, low=0.52),  # white-box far above transfer
        row("masked@4x", "pgd", "replica", 0.10),
        row("honest@4x", "pgd", "dense", 0.30, whitebox=0.05, low=0.02),
        row("honest@4x", "cw", "dense", 0.00),  # an unbounded L2 CW is no yardstick for PGD
        row("noisy@4x", "pgd", "dense", 0.10, whitebox=0.12, low=0.08),  # within the interval: no flag
    ]
    add_masking_flags(rows, 0.2)
    flagged = {r["target"] for r in rows if r["trustworthy"] is False}
    assert flagged == {"masked@4x"}
    assert all(
        f.startswith(MASKING) and "(lowest 0.100)" in f for f in rows[1]["sanity_failures"]
    )  # rows without per-example white-box correctness: the interval rule


def test_the_masking_check_is_a_paired_test_on_the_same_images():
    """With per-example correctness, white-box examples right on significantly more of the same
    images than one attacker's transferred examples flag the target; a few images do not."""
    from gap_art.bench.flags import add_masking_flags
    from gap_art.bench.rows import pack_correct

    def bits(right: int) -> str:
        return pack_correct(np.arange(100) < right)

    def rows(whitebox_right: int) -> list:
        cell = {"seed": 0, "target": "t", "attack": "pgd", "eps": 0.2, "n": 100, "trustworthy": True,
                "sanity_failures": []}  # fmt: skip
        whitebox = {**cell, "threat_model": "dense", "transfer_accuracy": 0.3, "transfer_correct": bits(30),
                    "whitebox_accuracy": whitebox_right / 100, "whitebox_correct": bits(whitebox_right),
                    "whitebox_mode": "direct (torchattacks)"}  # fmt: skip
        replica = {**cell, "threat_model": "replica", "transfer_accuracy": 0.1, "transfer_correct": bits(10)}
        return [whitebox, replica]

    masked, noisy = rows(60), rows(13)
    add_masking_flags(masked, 0.2)
    add_masking_flags(noisy, 0.2)
    assert [r["trustworthy"] for r in masked] == [False, False]
    assert [r["trustworthy"] for r in noisy] == [True, True]


def test_the_validation_rows_decide_masking_and_the_test_rows_report_it():
    """A target with white-box examples on the validation rows is judged there (white-box
    against the same attack transferred from the dense model, paired on those images);
    ``gradient_masking_test`` still says what the test rows show, and decides nothing."""
    from gap_art.bench.flags import MASKING, add_masking_flags
    from gap_art.bench.rows import pack_correct

    def bits(right: int, n: int = 100) -> str:
        return pack_correct(np.arange(n) < right)

    def target(name: str, validation_whitebox: int, test_whitebox: int) -> list:
        cell = {"seed": 0, "target": name, "attack": "pgd", "eps": 0.2, "n": 100, "trustworthy": True,
                "sanity_failures": [], "validation_attack": "pgd", "validation_class_support": [60, 60],
                "validation_transfer_correct": bits(30, 120),
                "validation_whitebox_correct": bits(validation_whitebox, 120)}  # fmt: skip
        whitebox = {**cell, "threat_model": "dense", "transfer_accuracy": 0.3, "transfer_correct": bits(30),
                    "whitebox_accuracy": test_whitebox / 100, "whitebox_correct": bits(test_whitebox),
                    "whitebox_mode": "direct (torchattacks)"}  # fmt: skip
        return [
            whitebox,
            {**cell, "threat_model": "replica", "transfer_accuracy": 0.1, "transfer_correct": bits(10)},
        ]

    masked_on_validation = target("a", validation_whitebox=70, test_whitebox=5)
    masked_on_test_only = target("b", validation_whitebox=20, test_whitebox=60)
    add_masking_flags(masked_on_validation + masked_on_test_only, 0.2)
    assert [r["gradient_masking"] for r in masked_on_validation] == [True, True]
    assert [r["trustworthy"] for r in masked_on_validation] == [False, False]
    assert "validation rows" in masked_on_validation[0]["sanity_failures"][0]
    assert masked_on_validation[0]["sanity_failures"][0].startswith(MASKING)
    assert masked_on_validation[0]["gradient_masking_test"] is False
    assert [r["gradient_masking"] for r in masked_on_test_only] == [False, False]
    assert masked_on_test_only[0]["gradient_masking_test"] is True  # reported, not deciding
    assert [r["trustworthy"] for r in masked_on_test_only] == [True, True]


def test_a_leak_is_a_paired_difference_not_one_image():
    """transfer_exceeds_clean needs the attacker's examples significantly more often right than
    the same examples clean (exact McNemar); one image more is noise. Rows without per-example
    clean correctness keep the bare comparison."""
    from gap_art.bench.flags import add_leak_flags
    from gap_art.bench.rows import pack_correct

    clean = np.arange(100) < 50

    def row(transfer_right: int, paired: bool = True):
        transfer = np.arange(100) < transfer_right
        cell = {"n": 100, "clean_accuracy": 0.5, "transfer_accuracy": transfer_right / 100,
                "transfer_correct": pack_correct(transfer)}  # fmt: skip
        return {**cell, "clean_correct": pack_correct(clean)} if paired else cell

    rows = [row(51), row(70), row(51, paired=False), row(40)]
    add_leak_flags(rows)
    assert [r["transfer_exceeds_clean"] for r in rows] == [False, True, True, False]


def test_a_white_box_attack_that_leaves_more_than_one_percent_of_the_dense_model_fails_its_check():
    """Attacks at full strength: each L-inf attack run white-box on the undefended dense model
    must leave at most 1% of the test images correct; where it leaves more, its rows are marked,
    and reading the study back twice adds the check once."""
    from gap_art.bench.flags import annotate

    def dense(seed, attack, whitebox):
        return {"target": "dense", "threat_model": "dense", "attack": attack, "eps": 0.1, "seed": seed,
                "family": "baseline", "method": "dense", "transfer_accuracy": whitebox,
                "clean_accuracy": 0.9, "whitebox_accuracy": whitebox, "error": None}  # fmt: skip

    rows = [dense(0, "pgd", 0.12), dense(0, "apgd-dlr", 0.004), dense(1, "pgd", 0.01), dense(1, "cw", 0.3)]
    rows[3]["whitebox_accuracy"] = 0.3  # CW is L2: no L-inf budget to be at full strength within
    checks: dict = {}
    for _ in range(2):
        annotate(rows, checks, 0.1)
    outcome = {(seed, c.name): c.passed for seed, cs in checks.items() for c in cs}
    assert outcome == {
        (0, "pgd at full strength white-box"): False,
        (0, "apgd-dlr at full strength white-box"): True,
        (1, "pgd at full strength white-box"): True,
    }
    assert rows[0]["trustworthy"] is False and rows[0]["sanity_failures"] == [
        "pgd at full strength white-box"
    ]
    assert rows[1]["trustworthy"] and rows[2]["trustworthy"]
    failed = next(c for c in checks[0] if c.name == "pgd at full strength white-box")
    assert failed.detail.endswith("every white-box attack of the seed left: pgd 0.120, apgd-dlr 0.004")
    alone = next(c for c in checks[1] if c.name == "pgd at full strength white-box")
    assert "every white-box attack" not in alone.detail  # one attack: nothing to compare


def test_the_leak_flag_of_the_validation_cell_is_decided_on_the_validation_rows():
    """The cell whose attack was also crafted on the validation rows (the primary attack from
    the dense model) is called leaking by those rows alone; the test rows' answer is reported
    beside it, and a cell with no validation examples is decided on its test rows."""
    from gap_art.bench.flags import add_leak_flags
    from gap_art.bench.rows import pack_correct

    n, v = 100, 60
    leak_clean, leak_transfer = np.zeros(n, bool), np.ones(n, bool)  # right only under attack
    fair = np.zeros(v, bool)
    fair[:30] = True  # validation: the same examples right clean and transferred

    def row(attack, threat="dense"):
        return {"target": "m@4x", "seed": 0, "attack": attack, "threat_model": threat, "eps": 0.1, "n": n,
                "clean_accuracy": 0.0, "transfer_accuracy": 1.0, "error": None,
                "clean_correct": pack_correct(leak_clean), "transfer_correct": pack_correct(leak_transfer),
                "validation_attack": "pgd", "validation_class_support": [v // 2, v // 2],
                "validation_clean_correct": pack_correct(fair),
                "validation_transfer_correct": pack_correct(fair)}  # fmt: skip

    rows = [row("pgd"), row("fgsm"), row("pgd", "replica")]
    add_leak_flags(rows)
    assert [r["transfer_exceeds_clean"] for r in rows] == [False, True, True]
    assert all(r["transfer_exceeds_clean_test"] for r in rows)
    rows[0]["validation_transfer_correct"] = pack_correct(np.ones(v, bool))  # leaks on validation too
    add_leak_flags(rows)
    assert rows[0]["transfer_exceeds_clean"]
