"""Beyond GAP: transfer adversarial fine-tuning, gradient misalignment, iterative pruning,
method names, and their place in the bench (issue 15)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from gap_art.attacks import make_attack
from gap_art.defences import (
    GreedyAdversarialPruning,
    Int8Quantization,
    IrregularPruning,
    StaticSourceAttack,
    TransferAdversarialFinetuning,
)
from gap_art.defences.art_builtin import TrainingData
from gap_art.defences.art_builtin import get as get_art_defence
from gap_art.defences.methods import apply_method, needs_attack, parse_method
from gap_art.defences.misalignment import GradientMisalignmentFinetuning, input_gradients
from gap_art.pruning import prunable_parameters
from gap_art.settings import AttackSpec, FinetuneSpec, MethodSpec

EPS = 0.3  # digits live in [0, 1]; 0.3 leaves the dense model little
FAST = {"lr": 1e-2}  # digits has 11 batches an epoch: a few epochs need a larger step


def accuracy(classifier, x, y) -> float:
    return float((classifier.predict(x).argmax(1) == y).mean())


def zero_masks(model) -> dict[str, torch.Tensor]:
    return {name: buffer.clone() for name, buffer in model.named_buffers() if name.endswith("weight_mask")}


@pytest.fixture
def pruned(classifier, digits):
    x, y = digits.numpy("train")
    return IrregularPruning(classifier, 4, criterion="magnitude")(x, y=y)


def test_tat_resists_the_parents_examples_and_keeps_the_masks(classifier, pruned, digits):
    x, y = digits.numpy("train")
    xt, yt = digits.numpy("test")
    masks = zero_masks(pruned.model)
    before = [p.detach().clone() for p in pruned.model.parameters()]
    tat = TransferAdversarialFinetuning(pruned, classifier, eps=EPS, epochs=4, seed=0, **FAST)
    hardened = tat(x, y=y)
    x_adv = make_attack("pgd", classifier, eps=EPS).generate(xt, yt)
    assert accuracy(hardened, x_adv, yt) > accuracy(pruned, x_adv, yt) + 0.2
    for name, mask in zero_masks(hardened.model).items():
        assert torch.equal(mask, masks[name])
    for module, name in prunable_parameters(hardened.model):
        assert torch.all(getattr(module, name)[getattr(module, f"{name}_mask") == 0] == 0)
    assert all(torch.equal(a, b) for a, b in zip(before, pruned.model.parameters(), strict=True))
    assert tat.finetune_record_ is not None and tat.finetune_record_.epochs_run == 4


def test_tat_is_seeded_and_stops_early_on_a_validation_split(classifier, pruned, digits):
    x, y = digits.numpy("train")

    def weights(seed: int) -> list[torch.Tensor]:
        tat = TransferAdversarialFinetuning(pruned, classifier, eps=EPS, epochs=3, patience=1, seed=seed)
        model = tat(x, y=y).model
        assert tat.finetune_record_ is not None and tat.finetune_record_.best_epoch >= 1
        assert len(tat.finetune_record_.validation_accuracy) == tat.finetune_record_.epochs_run
        return [p.detach() for p in model.parameters()]

    first, again, other = weights(0), weights(0), weights(1)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, other, strict=True))


@pytest.mark.parametrize("hardening", [TransferAdversarialFinetuning, GradientMisalignmentFinetuning])
@pytest.mark.parametrize("patience", [None, 1])
def test_a_hardenings_monitor_sees_every_epoch_and_changes_nothing(
    classifier, pruned, digits, hardening, patience
):
    """``finetune_monitor`` (a training curve's hook) is called with the unhardened copy as
    epoch 0 and after every epoch trained, with early stopping or without; a monitor that runs
    a seeded attack between epochs leaves the hardened weights as they are without it."""
    x, y = digits.numpy("train")
    xv, yv = digits.numpy("test")

    def harden(monitor) -> list[torch.Tensor]:
        defence = hardening(pruned, classifier, eps=EPS, epochs=3, patience=patience, seed=0)
        defence.finetune_monitor = monitor
        model = defence(x, y=y, validation_data=(xv[:50], yv[:50])).model
        assert defence.finetune_record_ is not None
        epochs.append(defence.finetune_record_.epochs_run)
        return [p.detach().clone() for p in model.parameters()]

    seen: list[int] = []
    epochs: list[int] = []

    def attack_between_epochs(epoch, trainee):
        seen.append(epoch)
        make_attack("pgd", trainee, eps=EPS, seed=epoch).generate(xv[:20], yv[:20])
        torch.rand(3)  # a draw of its own, outside the attack's seeded block

    watched, plain = harden(attack_between_epochs), harden(None)
    assert seen == list(range(epochs[0] + 1)) and epochs[0] == epochs[1]
    assert all(torch.equal(a, b) for a, b in zip(watched, plain, strict=True))


def test_static_source_attack_crafts_each_input_set_once(classifier, digits):
    x, y = digits.numpy("test")
    calls = []

    def craft(inputs, labels):
        calls.append(len(inputs))
        return inputs + 0.1

    attack = StaticSourceAttack(classifier, craft)
    first = attack.generate(x, y)
    assert attack.generate(x.copy(), np.eye(10)[y]) is first  # same content, one-hot labels
    attack.generate(x[:10], y[:10])
    assert calls == [len(x), 10]
    with pytest.raises(ValueError, match="labels y"):
        attack.generate(x)


def test_gal_turns_the_input_gradients_away_from_the_parents(classifier, pruned, digits):
    x, y = digits.numpy("train")
    xt, yt = torch.from_numpy(digits.numpy("test")[0]), torch.from_numpy(digits.numpy("test")[1])

    def mean_abs_cos(model) -> float:
        a = input_gradients(model.eval(), xt, yt).flatten(1)
        b = input_gradients(classifier.model, xt, yt).flatten(1)
        return float(torch.nn.functional.cosine_similarity(a, b, dim=1).abs().mean())

    gal = GradientMisalignmentFinetuning(
        pruned, classifier, eps=EPS, epochs=3, misalignment=2.0, smoothness=0.0, seed=0, **FAST
    )
    hardened = gal(x, y=y)
    assert mean_abs_cos(hardened.model) < mean_abs_cos(pruned.model) - 0.2
    assert accuracy(hardened, *digits.numpy("test")) > 0.8
    assert zero_masks(hardened.model).keys() == zero_masks(pruned.model).keys()


def test_gal_smoothness_term_flattens_the_loss_around_the_inputs(classifier, pruned, digits):
    x, y = digits.numpy("train")
    xt, yt = (torch.from_numpy(a) for a in digits.numpy("test"))
    noisy = (xt + torch.empty_like(xt).uniform_(-EPS, EPS, generator=torch.Generator().manual_seed(0))).clamp(
        0, 1
    )

    def gradient_l1(smoothness: float) -> float:
        """Mean L1 norm of the input gradient in the eps-ball, where the term acts."""
        gal = GradientMisalignmentFinetuning(
            pruned, classifier, eps=EPS, epochs=3, misalignment=0.0, smoothness=smoothness, **FAST
        )
        model = gal(x, y=y).model.eval()
        return float(input_gradients(model, noisy, yt).abs().flatten(1).sum(1).mean())

    assert gradient_l1(1.0) < 0.85 * gradient_l1(0.0)


def test_hardening_composes_with_int8_and_transformed_classifier(classifier, pruned, digits):
    x, y = digits.numpy("train")
    xt, yt = digits.numpy("test")
    target = IrregularPruning(classifier, 4, criterion="magnitude")(x, y=y)
    tat = TransferAdversarialFinetuning(pruned, classifier, eps=EPS, epochs=1)
    returned = tat(x, transformed_classifier=target, y=y)
    assert returned is target
    assert np.allclose(target.predict(xt), tat(x, y=y).predict(xt), atol=1e-5)
    int8 = Int8Quantization(target)(x[:256])
    assert accuracy(int8, xt, yt) > 0.8


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"eps": -0.1}, "eps"),
        ({"epochs": 0}, "epochs"),
        ({"patience": 0}, "patience"),
        ({"attack": "pgdd"}, "attack"),
        ({"ratio": 1.5}, "ratio"),
        ({"parent": "model.pt"}, "parent"),
        ({"self_attack": "pgd"}, "self_attack"),
    ],
)
def test_tat_checks_its_parameters_at_construction(classifier, pruned, change, message):
    settings = {"parent": classifier, **change}
    with pytest.raises((ValueError, TypeError), match=message):
        TransferAdversarialFinetuning(pruned, **settings)


def test_hardening_refuses_unknown_parameters_and_missing_labels(classifier, pruned, digits):
    gal = GradientMisalignmentFinetuning(pruned, classifier)
    with pytest.raises(ValueError, match="unknown parameters.*known"):
        gal.set_params(smoothnes=0.0)
    with pytest.raises(ValueError, match="misalignment"):
        gal.set_params(misalignment=-1.0)
    with pytest.raises(ValueError, match=r"y is required by GradientMisalignmentFinetuning.__call__"):
        gal(digits.numpy("train")[0])
    assert gal.get_classifier() is pruned and gal.is_fitted


def test_iterative_pruning_reaches_the_ratio_in_rounds(classifier, digits):
    x, y = digits.numpy("train")
    settings = {"nb_calibration": 128, "finetune_epochs": 1}
    first = GreedyAdversarialPruning(classifier, 4, **settings)(x, y=y)
    second = GreedyAdversarialPruning(classifier, 4, iterative=True, rounds=1, **settings)(x, y=y)
    pairs = zip(zero_masks(first.model).values(), zero_masks(second.model).values(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)

    gap = GreedyAdversarialPruning(classifier, 4, iterative=True, rounds=3, **settings)
    assert gap.round_compressions() == pytest.approx([4 ** (1 / 3), 4 ** (2 / 3), 4.0])
    iterative = gap(x, y=y)
    assert gap.compression_report_ is not None and gap.compression_report_.compression == pytest.approx(4.0)
    assert len(gap.finetune_records_) == 3
    masks = zip(zero_masks(first.model).values(), zero_masks(iterative.model).values(), strict=True)
    assert not all(torch.equal(a, b) for a, b in masks)  # later rounds re-scored the pruned model
    with pytest.raises(ValueError, match="rounds"):
        gap.set_params(rounds=0)


def test_method_names_parse_and_refuse_typos():
    assert parse_method("gap-iter") == MethodSpec("gap-grad", iterative=True)
    assert parse_method("magnitude+iter+gal") == MethodSpec("magnitude", iterative=True, hardening="gal")
    assert parse_method("magnitude+iter+gal").name == "magnitude+iter+gal"
    assert needs_attack(parse_method("gap-grad+tat")) and not needs_attack(parse_method("random+tat"))
    with pytest.raises(ValueError, match=r"methods.*did you mean 'tat'"):
        parse_method("magnitude+tta", "methods")
    with pytest.raises(ValueError, match="one hardening"):
        parse_method("magnitude+tat+gal")
    with pytest.raises(ValueError, match="did you mean 'magnitude'"):
        parse_method("magnitud+tat")


def test_apply_method_hardens_instead_of_clean_finetuning(classifier, digits):
    x, y = digits.numpy("train")
    spec = parse_method(
        "magnitude+iter+tat",
        compression=4.0,
        rounds=2,
        finetune=FinetuneSpec(1),
        hardening_attack=AttackSpec(eps=EPS),
    )
    result = apply_method(spec, classifier, x[:256], y[:256], x, y)
    assert [r.epochs_run for r in result.records] == [0, 0, 1]  # two rounds without clean fine-tuning
    assert result.excluded_layers == ["classifier.3.weight"]


def test_ensemble_adversarial_training_hardens_the_dense_model(classifier, digits):
    x, y = digits.numpy("train")
    xt, yt = digits.numpy("test")
    defence = get_art_defence("ensemble-adv")
    student = torch.nn.Linear(1, 1)  # unused: it fine-tunes a copy of the source
    eps = digits.info.eps
    model = defence.train(classifier, TrainingData(x, y, student, FinetuneSpec(8), eps))
    hardened = type(classifier)(**{**classifier.get_params(), "model": model})
    x_adv = make_attack("pgd", classifier, eps=eps).generate(xt, yt)
    assert accuracy(hardened, x_adv, yt) > accuracy(classifier, x_adv, yt) + 0.2
    assert accuracy(hardened, xt, yt) > 0.9


@pytest.mark.parametrize("name", ["fbf", "ensemble-adv"])
def test_arts_trainers_show_a_monitor_every_epoch(classifier, digits, name):
    """An ART adversarial trainer given a monitor (a training curve) shows it the model before
    training and after each epoch, without early stopping too (then one epoch per call)."""
    x, y = digits.numpy("train")
    seen: list[tuple[int, float]] = []

    def monitor(epoch, model):
        seen.append((epoch, accuracy(model, x[:100], y[:100])))

    data = TrainingData(x, y, torch.nn.Linear(1, 1), FinetuneSpec(3, None), digits.info.eps, monitor=monitor)
    model = get_art_defence(name).train(classifier, data)
    assert [epoch for epoch, _ in seen] == [0, 1, 2, 3]
    trained = type(classifier)(**{**classifier.get_params(), "model": model})
    assert seen[-1][1] == accuracy(trained, x[:100], y[:100])  # the last epoch seen is the model kept


def test_an_art_defence_before_pruning_defends_the_parent_then_compresses_it(classifier, digits):
    """``ensemble-adv>magnitude``: ART's ensemble adversarial training on a copy of the parent,
    then magnitude pruning of that model; the parent itself is left as it was."""
    x, y = digits.numpy("train")
    xt, yt = digits.numpy("test")
    spec = parse_method("ensemble-adv>magnitude", compression=4.0, finetune=FinetuneSpec(8),
                        hardening_attack=AttackSpec(eps=digits.info.eps))  # fmt: skip
    assert spec.pretraining == "ensemble-adv" and spec.name == "ensemble-adv>magnitude"
    before = {k: v.clone() for k, v in classifier.model.state_dict().items()}
    result = apply_method(spec, classifier, x[:256], y[:256], x, y)
    defended = result.classifier
    plain = apply_method(replace(spec, pretraining=None), classifier, x[:256], y[:256], x, y).classifier
    assert all(torch.equal(v, classifier.model.state_dict()[k]) for k, v in before.items())
    assert result.report.compression == pytest.approx(4.0, rel=0.01)
    x_adv = make_attack("pgd", classifier, eps=digits.info.eps).generate(xt, yt)
    # clean fine-tuning after pruning wears much of the adversarial training away, not all of it
    assert accuracy(defended, x_adv, yt) > accuracy(plain, x_adv, yt) + 0.05
    with pytest.raises(ValueError, match="must be an ART trainer that fine-tunes the parent"):
        parse_method("distillation>magnitude", "methods")
    with pytest.raises(ValueError, match="one ART defence"):
        parse_method("fbf>ensemble-adv>magnitude")


def test_tat_with_self_fgsm_is_its_own_method(classifier, pruned):
    from gap_art.defences.methods import HARDENINGS

    hardener = HARDENINGS.get("tat-fgsm")(pruned, classifier)
    assert hardener.self_attack == "fgsm" and isinstance(hardener, TransferAdversarialFinetuning)
    assert parse_method("magnitude+tat-fgsm").hardening == "tat-fgsm"


def row(**fields):
    base = {"family": "pruning", "method": "magnitude", "target": "magnitude@4x", "seed": 0, "attack": "pgd",
            "threat_model": "dense", "eps": 0.3, "requested_compression": 4.0, "clean_accuracy": 0.9,
            "transfer_accuracy": 0.5, "error": None}  # fmt: skip
    return {**base, **fields}


def test_transfer_above_clean_is_flagged_and_hardened_methods_are_paired_candidates():
    from gap_art.bench.flags import add_leak_flags
    from gap_art.bench.summary import is_candidate

    rows = [row(), row(target="magnitude+tat@4x", method="magnitude+tat", transfer_accuracy=0.95)]
    add_leak_flags(rows)
    assert [r["transfer_exceeds_clean"] for r in rows] == [False, True]
    assert not is_candidate(rows[0]) and is_candidate(rows[1])
    assert is_candidate(row(gap_eps=0.01)) and not is_candidate(row(family="quantization", method="m+int8"))


def test_a_hardened_model_has_a_budget_point_without_a_finetuning_curve():
    from gap_art.bench.summary import budget_table

    def scored(clean, transfer, **fields):  # the kept model's point on the validation rows
        return row(validation_clean_accuracy=clean, validation_transfer_accuracy=transfer, **fields)

    rows = [
        scored(
            0.9,
            0.1,
            target="dense",
            family="baseline",
            method="dense",
            clean_accuracy=0.9,
            transfer_accuracy=0.1,
        ),
        scored(
            0.89,
            0.7,
            target="magnitude+tat@4x",
            method="magnitude+tat",
            clean_accuracy=0.89,
            transfer_accuracy=0.8,
        ),
    ]
    entries = budget_table(rows, "pgd", 0.3, budgets=[0.02, 0.005])
    by_budget = {e["budget"]: e["values"] for e in entries if e["method"] == "magnitude+tat"}
    assert by_budget == {0.02: [0.8], 0.005: [None]}


def test_the_bench_runs_hardened_and_iterative_methods_with_their_replicas(tmp_path, warm):
    from dataclasses import replace

    from gap_art.bench import preset, run

    config = replace(
        preset("quick"),
        methods=["magnitude", "magnitude+tat", "gap-iter"],
        compression=[4.0],
        attacks=["pgd"],
        defences=["ensemble-adv"],
        int8=False,
        rounds=2,
        finetune_epochs=2,
        defence_epochs=1,
        n_test=100,
        threat_models=["dense", "replica", "independent"],
        sanity_checks=False,
        training_curves=True,
        curve_budgets=[0.5],
    )
    results = run(config, out=warm(tmp_path), progress=False)
    rows = {(r["target"], r["threat_model"]): r for r in results.rows}
    assert not [r for r in results.rows if r.get("error")]
    assert {"magnitude+tat@4x", "gap-iter@4x", "art:ensemble-adv"} <= {t for t, _ in rows}
    assert ("magnitude+tat@4x", "replica") in rows
    tat = rows[("magnitude+tat@4x", "dense")]
    curve, kept = tat["validation_curve"], tat["finetune_best_epoch"]
    assert [point[0] for point in curve] == list(range(tat["finetune_epochs_run"] + 1))
    assert all(len(point) == 4 and point[3] <= point[1] for point in curve)  # white-box at each epoch
    assert curve[kept][1:3] == [tat["validation_clean_accuracy"], tat["validation_transfer_accuracy"]]
    assert all(len(point) == 3 for point in rows[("gap-iter@4x", "dense")]["validation_curve"])
    sources = {s["source"]: s["accuracy"] for s in tat["validation_curve_sources"]}
    assert set(sources) == {"independent", "replica"}  # the study's attackers, and the replica
    assert all(len(values) == len(curve) for values in sources.values())
    art = rows[("art:ensemble-adv", "dense")]  # ART's trainer: the same curve, epoch by epoch
    assert [len(point) for point in art["validation_curve"]] == [4] * (art["finetune_epochs_run"] + 1)
    assert {s["source"] for s in art["validation_curve_sources"]} == {"independent", "replica"}
    assert all(value is None or 0 <= value <= 1 for values in sources.values() for value in values)
    cache = tmp_path / "cache"
    specs = {p: json.loads(p.read_text())["spec"] for p in cache.glob("target-*.json")}
    tat_file = next(
        p for p, spec in specs.items() if spec["name"] == "magnitude+tat@4x" and spec["seed"] == 0
    )
    epoch_models = {int(p.stem.rsplit("epoch", 1)[1]): p for p in cache.glob(f"{tat_file.stem}.epoch*.pt")}
    assert sorted(epoch_models) == [point[0] for point in curve]  # one model per epoch
    kept_model = torch.load(epoch_models[kept], weights_only=True)["state_dict"]
    target = torch.load(cache / f"{epoch_models[kept].name.split('.')[0]}.pt", weights_only=True)[
        "state_dict"
    ]
    assert all(torch.equal(kept_model[k], v) for k, v in target.items())  # the kept epoch is the target
    assert ("art:ensemble-adv", "replica") in rows  # ART's training rerun on M by the attacker
    _check_epoch_picks(rows)
    assert rows[("gap-iter@4x", "dense")]["gap_eps"] is not None
    report = (tmp_path / "report.md").read_text()
    assert "magnitude+tat@4x" in report
    curves = report.split("## Training curves (validation rows)")[1]
    assert "### magnitude+tat@4x" in curves and "PGD from replica" in curves and "within 50pt in" in curves


def _check_epoch_picks(rows):
    """Each curve's epoch chosen within the budget on validation is a target of its own, attacked
    by every attacker (the replica at the defender's epoch), its family its curve's."""
    from gap_art.bench.epoch_picks import choose_epoch
    from gap_art.bench.task_results import SourceCurve

    level = rows[("dense", "dense")]["validation_clean_accuracy"] - 0.5
    for curve_name, family in (("magnitude+tat@4x", "pruning"), ("art:ensemble-adv", "art_defence")):
        curve = rows[(curve_name, "dense")]
        sources = [SourceCurve(s["source"], tuple(s["accuracy"])) for s in curve["validation_curve_sources"]]
        pick = rows[(f"{curve_name}~50pt", "dense")]
        assert pick["family"] == family and ((f"{curve_name}~50pt", "replica") in rows)
        assert pick["finetune_best_epoch"] == choose_epoch(curve["validation_curve"], sources, level)
        assert pick["validation_clean_accuracy"] == curve["validation_curve"][pick["finetune_best_epoch"]][1]


def test_a_leaking_cell_is_no_win_no_best_and_is_listed_with_its_attacker():
    from gap_art.bench.config import BenchConfig
    from gap_art.bench.flags import add_leak_flags
    from gap_art.bench.primary import primary_results
    from gap_art.bench.rows import pack_correct
    from gap_art.bench.summary import analyse
    from gap_art.bench.verdict import verdict

    n = 200
    leaking_correct = np.ones(n, dtype=bool)  # the hardened model gets every transferred example
    baseline_correct = np.zeros(n, dtype=bool)
    common = {
        "n": n,
        "collapsed_classes": [],
        "class_recall": [0.9] * 10,
        "compression": 4.0,
        "size_bytes": 1,
    }
    rows = [
        row(target="dense", family="baseline", method="dense", requested_compression=1.0,
            transfer_accuracy=0.0, transfer_correct=pack_correct(baseline_correct), **common),
        row(target="magnitude+tat@4x", method="magnitude+tat", clean_accuracy=0.9, transfer_accuracy=1.0,
            transfer_correct=pack_correct(leaking_correct), **common),
        row(target="random@4x", method="random", clean_accuracy=0.9, transfer_accuracy=0.0,
            transfer_correct=pack_correct(baseline_correct), **common),
    ]  # fmt: skip
    rows += [dict(r, seed=1) for r in rows]  # two seeds: the primary comparison is tested across them
    add_leak_flags(rows)
    config = BenchConfig(methods=["magnitude+tat", "random"], compression=[4.0], attacks=["pgd"], defences=[],
                         eps=0.3, primary=["magnitude+tat@4x vs random@4x: pgd from dense"])  # fmt: skip
    analysis = replace(analyse(rows, "pgd", 0.3), primary=primary_results(rows, config))
    tests = [t for t in analysis.paired if t["first"] == "magnitude+tat"]
    assert all(t["leaking"] and t["p_holm"] < 1e-30 for t in tests)  # significant, and still no win
    (combined,) = [c for c in analysis.combined if c["first"] == "magnitude+tat"]
    assert combined["significant_wins"] == 0 and combined["leaking_seeds"] == 2
    (primary,) = analysis.primary
    assert primary.mean_difference == 1.0 and primary.p_value == 0.0  # the largest, steadiest "win"
    assert primary.outcome == "flagged" and "label leaking in seed(s) 0, 1" in primary.reason
    lines = "\n".join(verdict(rows, analysis, config, {}))
    assert "never counted as robustness" in lines and "magnitude+tat@4x (dense pgd)" in lines
    assert "1 flagged" in lines and "better" not in lines
