"""Attackers the defence never saw: another architecture, an adversarially trained model, an
ensemble of replicas with their own seeds; and each target's worst-attacker headline."""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from gap_art.bench import BenchConfig, ConfigError, build_graph, preset, run
from gap_art.bench.flags import add_worst_attacker
from gap_art.bench.seeds import attacker_seed
from gap_art.bench.targets import ArtTrainerSpec, PrunedSpec
from gap_art.bench.tasks import SourceSpec
from gap_art.models import EnsembleModule, create_model, independent_arch

UNSEEN = ["dense", "independent-arch", "robust", "replica", "replicas"]


def _crafts(graph, attack="pgd", seed=None):
    return {t.spec.threat_model: t for t in graph.tasks.values() if t.kind == "craft"
            and t.spec.attack.attack == attack and t.spec.split != "validation"
            and (seed is None or t.spec.seed == seed)}  # fmt: skip


def test_each_unseen_attacker_crafts_on_its_own_models_with_its_own_seeds():
    config = BenchConfig(methods=["gap-grad"], compression=[4.0], attacks=["pgd"], defences=[], int8=False,
                         seeds=[3], threat_models=UNSEEN, replicas=3)  # fmt: skip
    graph = build_graph(config)
    crafts = _crafts(graph)
    ours = next(t for t in graph.tasks.values() if t.kind == "source" and t.spec.seed == 3)

    (other_arch,) = (graph.tasks[d].spec for d in crafts["independent-arch"].deps)
    assert isinstance(other_arch, SourceSpec)
    assert other_arch.arch == "mlp" != config.arch and other_arch.seed == attacker_seed(3)

    (robust,) = (graph.tasks[d] for d in crafts["robust"].deps)
    assert isinstance(robust.spec, ArtTrainerSpec) and robust.spec.method == "fbf"
    assert robust.spec.seed == robust.spec.training.seed == attacker_seed(3)
    (trained_from,) = (graph.tasks[d].spec for d in robust.deps)  # no validation craft: not a target
    assert trained_from.arch == config.arch and trained_from.seed == attacker_seed(3)

    members = [graph.tasks[d] for d in crafts["replicas"].deps]
    seeds = [m.spec.seed for m in members]
    assert all(isinstance(m.spec, PrunedSpec) and m.deps == (ours.id,) for m in members)
    assert len(set(seeds)) == 3 and 3 not in seeds and seeds[0] == attacker_seed(3)
    assert crafts["replicas"].deps[0] == crafts["replica"].deps[0]  # its first member is the replica
    assert {m.spec.settings.seed for m in members} == set(seeds)
    # no attacker seed is any study seed's defender seed
    assert not set(seeds + [attacker_seed(s) for s in range(5)]) & set(range(100))


def test_replica_ensembles_of_several_sizes_share_their_first_members():
    threats = ["dense", "replica", "replicas-3", "replicas-5"]
    config = BenchConfig(methods=["random"], compression=[4.0], attacks=["pgd"], defences=[], int8=False,
                         seeds=[0], threat_models=threats)  # fmt: skip
    crafts = _crafts(build_graph(config))
    one, three, five = (crafts[t].deps for t in ("replica", "replicas-3", "replicas-5"))
    assert len(three) == 3 and len(five) == 5 and len(set(five)) == 5
    assert five[:3] == three and three[0] == one[0]


@pytest.mark.parametrize("threat", ["replicas-1", "replicas-x", "replica-5", "replicas-05"])
def test_a_replica_ensemble_names_two_or_more_members(threat):
    with pytest.raises(ConfigError, match=rf"threat_models: unknown '{threat}'.*replicas-K \(K >= 2\)"):
        BenchConfig(threat_models=["dense", threat]).validate()


def test_the_independent_architecture_is_unlike_ours_for_each_input_size():
    assert independent_arch("small-cnn", (1, 8, 8)) == "mlp"
    assert independent_arch("mlp", (1, 8, 8)) == "small-cnn"
    assert independent_arch("mlp", (1, 28, 28)) in ("lenet", "lenet-wide")
    assert independent_arch("resnet20", (3, 32, 32)) == "vgg11-bn"
    assert independent_arch("vgg11-bn", (3, 32, 32)) == "resnet20"
    for arch, shape in (("small-cnn", (1, 8, 8)), ("lenet", (1, 28, 28)), ("resnet20", (3, 32, 32))):
        other = independent_arch(arch, shape)
        assert create_model(other, shape, 10)(torch.zeros(2, *shape)).shape == (2, 10)


def test_unseen_attacker_settings_are_checked():
    with pytest.raises(ConfigError, match="replicas must be an integer >= 2"):
        BenchConfig(replicas=1).validate()
    with pytest.raises(ConfigError, match="robust_defence must be one of"):
        BenchConfig(robust_defence="jpeg").validate()
    with pytest.raises(ConfigError, match="independent_arch must be one of"):
        BenchConfig(independent_arch="not-a-net").validate()


def test_the_logit_ensemble_is_the_mean_of_its_members_logits():
    torch.manual_seed(0)
    members = [create_model(name, (1, 8, 8), 10).eval() for name in ("small-cnn", "mlp", "small-cnn")]
    x = torch.rand(5, 1, 8, 8)
    expected = sum(member(x) for member in members) / 3
    assert torch.allclose(EnsembleModule(members)(x), expected, atol=1e-6)
    # gradients flow to every member: an attack on the ensemble must fool them together
    EnsembleModule(members)(x).sum().backward()
    assert all(p.grad is not None for m in members for p in m.parameters() if isinstance(m, nn.Module))


def test_worst_attacker_is_the_minimum_over_attackers_and_attacks_per_seed():
    def row(seed, target, threat, attack, transfer, eps=0.2):
        return {"seed": seed, "target": target, "threat_model": threat, "attack": attack,
                "transfer_accuracy": transfer, "eps": eps}  # fmt: skip

    rows = [
        row(0, "a", "dense", "pgd", 0.6), row(0, "a", "robust", "pgd", 0.3),
        row(0, "a", "dense", "fgsm", 0.5),
        row(0, "a", "dense", "pgd", 0.0, eps=0.4),  # a security-curve point is not the nominal attack
        row(1, "a", "dense", "pgd", 0.7), row(1, "a", "replicas", "fgsm", 0.65),
        row(0, "b", "dense", "pgd", 0.9),
    ]  # fmt: skip
    add_worst_attacker(rows, 0.2)
    nominal = [r for r in rows if r["eps"] == 0.2]
    assert [r["worst_attacker_transfer_accuracy"] for r in nominal] == [0.3, 0.3, 0.3, 0.65, 0.65, 0.9]
    assert rows[0]["worst_attacker"] == "robust pgd" and rows[4]["worst_attacker"] == "replicas fgsm"
    assert "worst_attacker_transfer_accuracy" not in rows[3]


def test_an_l2_attack_never_enters_the_l_inf_worst_attacker_or_worst_case():
    """CW bounds L2, not L-inf: its examples may lie far outside the study's eps, so it keeps its
    own row and the worst attacker and worst case are taken over the L-inf attacks only."""
    from gap_art.attacks import is_linf
    from gap_art.bench.flags import add_worst_case
    from gap_art.bench.rows import pack_correct

    def row(attack, transfer, correct):
        packed = pack_correct(np.array(correct, dtype=bool))
        return {"seed": 0, "target": "a", "threat_model": "dense", "attack": attack, "eps": 0.2, "n": 4,
                "transfer_accuracy": transfer, "transfer_correct": packed}  # fmt: skip

    rows = [row("pgd", 0.5, [1, 1, 0, 0]), row("fgsm", 0.75, [1, 1, 1, 0]), row("cw", 0.0, [0, 0, 0, 0])]
    add_worst_attacker(rows, 0.2)
    add_worst_case(rows, 0.2)
    assert not is_linf("cw") and is_linf("pgd") and is_linf("mifgsm")
    assert [r["worst_attacker"] for r in rows] == ["dense pgd"] * 3  # CW's row reports the L-inf worst
    assert [r["worst_attacker_transfer_accuracy"] for r in rows] == [0.5] * 3
    assert [r["worst_case_transfer_accuracy"] for r in rows] == [0.5] * 3


def test_a_tied_worst_attacker_does_not_depend_on_row_order_or_hash_seed():
    """Equal transfer accuracy under two attackers: the row field takes the first by name, and
    the bottom line names every attacker that is worst in as many seeds (a report redrawn from
    results.json, in another order and process, says the same)."""
    from gap_art.bench.verdict import _claim

    def row(seed, threat, attack, transfer):
        return {"seed": seed, "target": "m@4x", "method": "m", "threat_model": threat, "attack": attack,
                "transfer_accuracy": transfer, "clean_accuracy": 0.8, "eps": 0.2}  # fmt: skip

    rows = [
        row(0, "replicas", "mifgsm", 0.3), row(0, "replica", "pgd", 0.3), row(0, "dense", "pgd", 0.5),
        row(1, "replicas", "mifgsm", 0.2), row(1, "dense", "pgd", 0.6), row(1, "replica", "pgd", 0.4),
    ]  # fmt: skip
    shuffled = [dict(r) for r in reversed(rows)]
    add_worst_attacker(rows, 0.2)
    add_worst_attacker(shuffled, 0.2)
    worst = {r["seed"]: r["worst_attacker"] for r in rows}
    assert worst == {0: "replica pgd", 1: "replicas mifgsm"}  # seed 0's tie: the first by name
    assert {r["seed"]: r["worst_attacker"] for r in shuffled} == worst
    both = "worst attacker MIFGSM from replicas or PGD from replica"  # worst in one seed each
    dense = [{**r, "target": "dense", "method": "dense"} for r in (rows[0], rows[3])]  # seeds 0 and 1
    rows, shuffled = rows + dense, shuffled + dense
    entry = {
        "method": "m",
        "seeds": [0, 1],
        "targets": ["m@4x", "m@4x"],
        "clean": [0.8, 0.8],
        "mean": 0.25,
        "low": 0.2,
        "high": 0.3,
    }
    assert _claim(rows, entry, 2).endswith(both) and _claim(shuffled, entry, 2).endswith(both)


@pytest.fixture(scope="module")
def unseen(tmp_path_factory, small_study):
    out = tmp_path_factory.mktemp("unseen")
    shutil.copytree(small_study.out / "cache", out / "cache")  # its seed 0's models, where shared
    config = replace(
        preset("quick"), methods=["gap-grad", "magnitude"], compression=[4.0], attacks=["fgsm", "pgd"],
        defences=["fbf"], int8=False, n_test=100, defence_epochs=1, threat_models=UNSEEN, replicas=2,
        sanity_checks=False,
    )  # fmt: skip
    return run(config, out=out, progress=False), config


def test_unseen_attackers_run_and_give_each_target_a_worst_attacker_headline(unseen):
    results, config = unseen
    assert not results.failed
    cells = {(r["target"], r["threat_model"], r["attack"]): r for r in results.rows}
    for target in ("dense", "gap-grad@4x", "magnitude@4x", "art:fbf"):
        rows = [r for k, r in cells.items() if k[0] == target]
        assert {"independent-arch", "robust"} <= {r["threat_model"] for r in rows}
        lowest = min(r["transfer_accuracy"] for r in rows)
        assert all(r["worst_attacker_transfer_accuracy"] == lowest for r in rows)
    assert ("gap-grad@4x", "replicas", "pgd") in cells and ("dense", "replicas", "pgd") not in cells
    report = (results.out / "report.md").read_text()
    assert "Within a clean-accuracy budget: worst-attacker transfer accuracy" in report
    assert (results.out / "pareto_worst_attacker.png").is_file()
    assert "worst_attacker_transfer_accuracy" in (results.out / "results.csv").read_text().splitlines()[0]


def test_unseen_attackers_craft_examples_unlike_the_dense_attackers(unseen):
    results, _ = unseen
    graph = build_graph(unseen[1])
    crafts = _crafts(graph, seed=0)
    examples = {}
    for threat, task in crafts.items():
        with np.load(results.out / "cache" / f"{task.id}.npz") as stored:
            examples[threat] = stored["x_adv"]
    dense = examples.pop("dense")
    for threat, x_adv in examples.items():
        assert x_adv.shape == dense.shape
        assert np.abs(x_adv - dense).max() > 1e-3, threat
    assert np.abs(examples["replicas"] - examples["replica"]).max() > 1e-3


def _table(report: str, heading: str) -> list[list[str]]:
    """The body rows of the first markdown table under ``heading``, as stripped cells."""
    section = report.split(heading, 1)[1].split("\n## ")[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.split("|")[1:-1]] for line in rows[2:]]


def _records(report: str, heading: str) -> list[dict[str, str]]:
    """The first table under ``heading`` as one dict per row by column name, with the columns
    the report left out for being the same in every row filled from the line that says so."""
    section = report.split(heading, 1)[1].split("\n## ")[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].split("|")[1:-1]]
    same = {}
    for line in section.splitlines():
        if line.startswith("The same in every row, so left out: "):
            for part in line.removeprefix("The same in every row, so left out: ").rstrip(".").split("; "):
                name = next(h for h in PAIRED_COLUMNS if part.startswith(h + " "))
                same[name] = part[len(name) + 1 :]
    return [{**same, **dict(zip(header, row, strict=True))} for row in _table(report, heading)]


PAIRED_COLUMNS = ("threat model", "ratio", "GAP", "against", "difference per seed", "Holm p per seed")
PAIRED_COLUMNS += ("wins", "losses")


def _holm(p_values):
    """Holm's step-down adjustment, written out independently of gap_art's."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted, running = [0.0] * len(p_values), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def test_the_paired_tests_recompute_from_results_json_with_scipy(unseen):
    """From results.json's per-example correctness alone: the same tests (grouped by seed,
    attack, attacker and ratio), the same exact McNemar p-values (scipy's binomtest on the
    discordant pairs), the same Holm adjustment, and the report's win and loss counts."""
    from scipy.stats import binomtest

    from gap_art.bench.rows import unpack_correct
    from gap_art.bench.summary import is_candidate, method_label

    results, config = unseen
    document = json.loads((results.out / "results.json").read_text())
    rows = [r for r in document["rows"] if r["family"] == "pruning" and r["eps"] == config.attack_eps]
    groups = defaultdict(list)
    for r in rows:
        groups[(r["seed"], r["attack"], r["threat_model"], r["requested_compression"])].append(r)
    expected = {}
    for key, members in groups.items():
        for first in (m for m in members if is_candidate(m)):
            for second in (m for m in members if m is not first and not is_candidate(m)):
                a, b = unpack_correct(first), unpack_correct(second)
                only_first, only_second = int((a & ~b).sum()), int((~a & b).sum())
                n = only_first + only_second
                p = binomtest(only_first, n, 0.5).pvalue if n else 1.0
                expected[(*key, method_label(first), method_label(second))] = (p, float(a.mean() - b.mean()))
    stored = {
        (t["seed"], t["attack"], t["threat_model"], t["ratio"], t["first"], t["second"]): t
        for t in document["paired_tests"]
    }
    assert set(stored) == set(expected) and len(stored) == len(document["paired_tests"])
    for key, (p, difference) in expected.items():
        assert stored[key]["p_value"] == pytest.approx(p, rel=1e-9, abs=1e-12)
        assert stored[key]["difference"] == pytest.approx(difference)
    keys = list(stored)
    for key, adjusted in zip(keys, _holm([stored[k]["p_value"] for k in keys]), strict=True):
        assert stored[key]["p_holm"] == pytest.approx(adjusted)
    # the report's wins and losses (PGD) from the recomputed tests
    table = _records((results.out / "report.md").read_text(), "## Exploratory paired tests (PGD)")
    assert table
    for record in table:
        threat, ratio, first, second = (record[k] for k in ("threat model", "ratio", "GAP", "against"))
        wins, losses = record["wins"], record["losses"]
        tests = [t for k, t in stored.items() if k[1:] == ("pgd", threat, float(ratio[:-1]), first, second)]
        significant = [t for t in tests if t["p_holm"] < 0.05 and not t["leaking"]]
        assert wins == f"{sum(t['difference'] > 0 for t in significant)}/{len(tests)}"
        assert losses == f"{sum(t['difference'] < 0 for t in significant)}/{len(tests)}"


def test_a_leaking_cell_counts_toward_no_best_budget_winner_win_or_goal_clause(unseen, tmp_path):
    """Make gap-grad@4x's PGD cell from the dense model leak (transfer far above clean, and the
    best on validation too) in a copy of a real study: rendered again, the report names it
    nowhere as best or budget winner, counts no paired win from it, and the goal misses it."""
    from gap_art.bench import Goal, check_study_goal, render

    results, config = unseen
    folder = tmp_path / "study"
    shutil.copytree(results.out, folder, ignore=shutil.ignore_patterns("cache"))
    document = json.loads((folder / "results.json").read_text())
    for r in document["rows"]:
        if r["target"] == "gap-grad@4x" and r["attack"] == "pgd" and r["threat_model"] == "dense":
            r["transfer_accuracy"] = min(1.0, r["clean_accuracy"] + 0.05)
            r["transfer_accuracy_ci_low"] = r["transfer_accuracy_ci_high"] = r["transfer_accuracy"]
            r["validation_transfer_accuracy"] = 1.0
            r["transfer_correct"] = "ff" * (len(r["transfer_correct"]) // 2)  # every example right
            bits = r["validation_transfer_correct"]  # on the validation rows too, where leaks are decided
            r["validation_transfer_correct"] = "ff" * (len(bits) // 2)
    (folder / "results.json").write_text(json.dumps(document))
    render(folder)
    report = (folder / "report.md").read_text()
    verdict = report.split("## Verdict")[1].split("\n## ")[0]
    assert "keeps" in verdict and not any("gap-grad keeps" in line for line in verdict.splitlines())
    assert "gap-grad@4x (dense pgd" in verdict  # listed among the leaking targets
    for heading in ("## Within a clean-accuracy budget", "## Pruning methods under PGD"):
        assert not [
            row for row in _table(report, heading) if row[0].startswith("gap-grad") and "**" in str(row)
        ]
    dense_tests = [
        r for r in _records(report, "## Exploratory paired tests (PGD)") if r["threat model"] == "dense"
    ]
    assert dense_tests and all(r["wins"].startswith("0/") for r in dense_tests)  # no win counted
    goal = Goal("leak", {"dense": 0.0}, attacks=("pgd",), methods=("gap-grad",), baselines=("magnitude",))
    clauses = {c.clause: c for c in check_study_goal(folder, goal)}
    leaking = [c for c in clauses.values() if "leak" in c.distance]
    assert leaking and all(c.status == "missed" for c in leaking)
    assert clauses["PGD from dense: mean transfer accuracy >= 0.00"].status == "missed"
    assert (
        clauses["PGD from dense: better than magnitude across seeds (paired t, Holm p < 0.05)"].status
        != "met"
    )


def test_goal_files_are_checked_and_bad_ones_are_usage_errors(unseen, tmp_path):
    from click.testing import CliRunner

    from gap_art.cli import main

    results, _ = unseen
    goal = tmp_path / "goal.toml"
    goal.write_text('name = "g"\nattacks = ["pgd"]\n[attackers]\ndense = 0.99\nrobust = 0.0\n')
    out = CliRunner().invoke(main, ["report", str(results.out), "--goal", str(goal)])
    assert out.exit_code == 0, out.output
    assert "Goal g: not met" in out.output and "PGD from dense: mean transfer accuracy >= 0.99" in out.output
    clause = "PGD from dense: better than {} across seeds (paired t, Holm p < 0.05): {}"
    assert clause.format("random", "no cell of random@4x in this study") in out.output
    assert clause.format("magnitude", "a score in 1 seed(s): the test needs 2 or more") in out.output
    for text, message in (
        ('name = "g"\n[attackers]\nnobody = 0.5\n', "attackers: unknown 'nobody'"),
        ('name = "g"\ncolour = 1\n[attackers]\ndense = 0.5\n', "unknown keys ['colour']"),
        ('name = "g"\n[attackers]\ndense = 1.5\n', "attackers.dense"),
    ):
        goal.write_text(text)
        out = CliRunner().invoke(main, ["report", str(results.out), "--goal", str(goal)])
        assert out.exit_code == 2 and message in out.output and "Traceback" not in out.output


def test_the_shipped_harden_goal_loads():
    from gap_art.bench import Goal

    goal = Goal.load(Path(__file__).parents[1] / "benchmarks" / "goals" / "harden.toml")
    assert {"independent-arch", "robust", "replicas"} <= set(goal.attackers)
    assert goal.references == ("art:fbf", "art:ensemble-adv") and goal.alpha == 0.01


@pytest.mark.parametrize("name", ["harden", "pool"])
def test_each_shipped_goal_is_checkable_on_its_presets_study(name):
    """Every method, attack, attacker and reference a goal names is one its preset runs:
    otherwise its clauses could only stay open."""
    from gap_art.bench import Goal

    config = preset(name)
    goal = Goal.load(Path(__file__).parents[1] / "benchmarks" / "goals" / f"{name}.toml")
    assert set(goal.methods) <= set(config.methods) and goal.ratio in config.compression
    assert set(goal.attacks) <= set(config.attacks) and set(goal.attackers) <= set(config.threat_models)
    assert set(goal.baselines) <= set(config.methods)
    assert {f"art:{d}" for d in config.defences} >= set(goal.references)


def _with_second_seed(folder: Path, target: str, shift: float) -> None:
    """Give a copied study a second seed: its rows again as seed 1, with ``target``'s PGD
    transfer accuracy from the dense model moved by ``shift`` (seeds that differ a little)."""
    document = json.loads((folder / "results.json").read_text())
    again = [dict(r, seed=1) for r in document["rows"] if r["seed"] == 0]
    for r in again:
        if r["target"] == target and r["attack"] == "pgd" and r["threat_model"] == "dense":
            r["transfer_accuracy"] = min(1.0, r["transfer_accuracy"] + shift)
    document["rows"] += again
    (folder / "results.json").write_text(json.dumps(document))


def test_compare_lists_the_verdict_lines_that_flip(unseen, tmp_path):
    from click.testing import CliRunner

    from gap_art.bench import flipped_conclusions
    from gap_art.cli import main

    results, _ = unseen
    claim = "gap-grad@4x vs magnitude@4x: pgd from dense"
    before, after = tmp_path / "before", tmp_path / "after"
    for folder in (before, after):
        shutil.copytree(results.out, folder, ignore=shutil.ignore_patterns("cache"))
        _with_second_seed(folder, "gap-grad@4x", 0.02)
    same = flipped_conclusions(before, before)
    assert same.flips == () and same.paired_tests > 0
    document = json.loads((after / "results.json").read_text())
    for r in document["rows"]:  # as if another CPU had made gap-grad's examples all fool it, in both seeds
        if r["target"] == "gap-grad@4x" and r["attack"] == "pgd" and r["threat_model"] == "dense":
            r["transfer_accuracy"], r["transfer_correct"] = 0.0, "00" * (len(r["transfer_correct"]) // 2)
        if r["target"] == "magnitude@4x" and r["attack"] == "pgd" and r["threat_model"] == "dense":
            assert r["transfer_accuracy"] > 0  # so gap-grad now loses in every seed by the same margin
    (after / "results.json").write_text(json.dumps(document))
    flips = {claim: (a, b) for claim, a, b in flipped_conclusions(before, after).flips}
    was, now = flips[claim]  # whatever it was
    assert was != now and now == "worse"
    out = CliRunner().invoke(main, ["compare", str(before), str(after), "--attack", "pgd"])
    assert out.exit_code == 0 and "verdict line(s) flip" in out.output and claim in out.output


def test_the_worst_attacker_clause_and_its_reference_at_equal_clean_cost():
    from gap_art.bench.goal import Goal, check_goal

    def row(target, seed, clean, worst, family="pruning"):
        return {"target": target, "method": target.split("@")[0], "family": family, "seed": seed,
                "eps": 0.1, "attack": "pgd", "threat_model": "dense",
                "requested_compression": 4.0 if "@" in target else 1.0,
                "clean_accuracy": clean, "transfer_accuracy": 0.8, "worst_attacker_transfer_accuracy": worst,
                "gap_eps": None}  # fmt: skip

    rows = [row("dense", s, 0.9, 0.0, "baseline") for s in (0, 1)]
    rows += [row("magnitude+pool@4x", 0, 0.89, 0.55), row("magnitude+pool@4x", 1, 0.88, 0.49)]
    rows += [row("art:fbf", s, 0.89, 0.60, "art_defence") for s in (0, 1)]
    rows += [row("art:jpeg", s, 0.70, 0.70, "art_defence") for s in (0, 1)]
    goal = Goal("g", {"dense": 0.5}, worst_attacker=0.5, references=("art:fbf", "art:jpeg"), baselines=())
    clauses = {c.clause: c for c in check_goal(goal, rows, 0.1)}
    worst = clauses["worst-attacker transfer accuracy >= 0.50 (every attacker and attack run)"]
    assert worst.status == "met" and worst.distance == "0.520 (+0.020)"
    assert clauses["worst attacker: no worse than art:fbf at equal clean cost"].status == "missed"
    assert (
        clauses["worst attacker: no worse than art:jpeg at equal clean cost"].status == "open"
    )  # pays 19 points
    assert clauses["clean accuracy within 2 points of the dense model in every seed"].status == "met"


def test_compare_says_when_two_studies_share_no_paired_test(small_study, tmp_path):
    """An ablation holding only the dense model and one method has no paired test: "no verdict
    line flipped" would say nothing, so compare says there was nothing to flip."""
    from click.testing import CliRunner

    from gap_art.bench import flipped_conclusions, format_flips
    from gap_art.cli import main

    folder = tmp_path / "ablation"
    shutil.copytree(small_study.out, folder, ignore=shutil.ignore_patterns("cache"))
    document = json.loads((folder / "results.json").read_text())
    document["rows"] = [r for r in document["rows"] if not r["target"].startswith("gap-grad")]
    (folder / "results.json").write_text(json.dumps(document))
    comparison = flipped_conclusions(folder, folder)
    assert comparison.paired_tests == 0 and comparison.flips == ()
    message = format_flips(comparison)
    assert message.startswith("No paired tests to compare")
    assert "every shared conclusion" not in message  # only the unpaired lines could have held
    assert flipped_conclusions(small_study.out, small_study.out).paired_tests == 0  # one seed: none tested
    tested = tmp_path / "two-seeds"
    shutil.copytree(small_study.out, tested, ignore=shutil.ignore_patterns("cache"))
    _with_second_seed(tested, "gap-grad@4x", 0.01)
    assert flipped_conclusions(tested, tested).paired_tests > 0
    out = CliRunner().invoke(main, ["compare", str(folder), str(folder)])
    assert out.exit_code == 0 and "No paired tests to compare" in out.output
