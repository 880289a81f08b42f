import json
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import small_config

from gap_art.bench import BenchConfig, ConfigError, build_graph, load_config_file, preset, run
from gap_art.bench import executors as executors_module
from gap_art.bench import tasks as tasks_module
from gap_art.bench.rows import ROW_FIELDS, Row
from gap_art.bench.store import Store
from gap_art.evaluation import craft_examples


@pytest.fixture(scope="module")
def finished(small_study):
    return small_study


def test_rows_schema_and_files(finished):
    rows = finished.rows
    targets = {
        "dense",
        "gap-grad@4x",
        "magnitude@4x",
        "dense+int8",
        "gap-grad@4x+int8",
        "magnitude@4x+int8",
        "art:feature-squeezing",
        "art:fbf",
    }
    assert {r["target"] for r in rows} == targets
    assert len(rows) == len(targets) * 2 and not finished.failed
    declared = Row.__required_keys__ | Row.__optional_keys__
    assert tuple(Row.__annotations__)[: len(ROW_FIELDS)] == ROW_FIELDS  # the CSV's leading columns, in order
    for row in rows:  # the typed record declares every column a row has (intervals follow a metric's name)
        assert set(ROW_FIELDS) <= set(row)
        assert {k for k in row if not k.endswith(("_ci_low", "_ci_high"))} <= declared
        assert row["family"] in ("baseline", "pruning", "quantization", "art_defence")
        assert row["n"] == 200 and 0 <= row["clean_accuracy"] <= 1
        assert row["transfer_accuracy_ci_low"] <= row["transfer_accuracy"] <= row["transfer_accuracy_ci_high"]
        assert row["size_bytes"] > 0 and row["time_s"] >= 0
    by_target = {(r["target"], r["attack"]): r for r in rows}
    assert by_target[("gap-grad@4x", "pgd")]["compression"] == pytest.approx(4.0, rel=1e-3)
    assert by_target[("dense+int8", "pgd")]["whitebox_mode"] == "surrogate (torchattacks)"
    assert by_target[("dense+int8", "fgsm")]["whitebox_accuracy"] is None  # only PGD runs white-box
    assert by_target[("gap-grad@4x", "pgd")]["whitebox_mode"] == "direct (torchattacks)"
    assert by_target[("art:feature-squeezing", "pgd")]["whitebox_mode"] == "direct (art)"
    for row in rows:
        assert row["worst_case_transfer_accuracy"] <= row["transfer_accuracy"]
        assert row["trustworthy"] is True and row["sanity_failures"] == []
    gap_row = by_target[("gap-grad@4x", "pgd")]
    run, kept = gap_row["finetune_epochs_run"], gap_row["finetune_best_epoch"]
    assert len(gap_row["validation_curve"]) == run + 1 and kept <= run  # before + each epoch run
    epoch, clean, transfer = gap_row["validation_curve"][kept]  # the kept epoch's point, on validation
    assert (clean, transfer) == (
        gap_row["validation_clean_accuracy"],
        gap_row["validation_transfer_accuracy"],
    )
    assert gap_row["excluded_layers"] == ["classifier.3.weight"] and gap_row["gap_eps"] == pytest.approx(
        2 / 255
    )
    assert gap_row["layer_sparsity"]["classifier.3.weight"] == 0.0 and len(gap_row["class_recall"]) == 10
    assert gap_row["collapsed_classes"] == []
    assert by_target[("dense+int8", "pgd")]["size_bytes"] < by_target[("dense", "pgd")]["size_bytes"]
    document = json.loads((finished.out / "results.json").read_text())
    assert set(document) == {
        "gap_art_version",
        "config",
        "environment",
        "data_splits",
        "evaluation_set",
        "sanity_checks",
        "clean_accuracy_budgets",
        "primary_comparisons",
        "paired_tests",
        "rows",
    }
    assert document["config"]["compression"] == [4.0] and "torch" in document["environment"]
    splits = document["data_splits"]
    assert [splits[name]["source"] for name in ("train", "validation", "test")] == ["train", "train", "test"]
    assert splits["validation"]["size"] == round(0.1 * 1347) and splits["train"]["size"] == 1347 - 135
    environment = document["environment"]
    assert environment["cpu"] and environment["cpu_capability"] in (
        "DEFAULT",
        "AVX2",
        "AVX512",
        "ZVECTOR",
        "SVE256",
    )
    assert document["evaluation_set"]["selection_seeds"] == {"0": 0}
    csv_lines = (finished.out / "results.csv").read_text().splitlines()
    assert len(csv_lines) == len(rows) + 1 and csv_lines[0].startswith("target,family,method")
    report = (finished.out / "report.md").read_text()
    assert "## Pruning methods under PGD" in report and "not against attacks in general" in report
    assert report.index("## Verdict") < report.index("## Pruning methods under PGD")
    assert (finished.out / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert (
        "## Sanity checks" in report
        and "## Within a clean-accuracy budget: worst-attacker transfer accuracy" in report
    )
    assert (
        "## Primary comparisons" in report
        and "## Exploratory paired tests" in report
        and "## Inside the pruned models" in report
    )
    assert set(document["sanity_checks"]) == {"0"} and document["evaluation_set"]["n"] == 200
    assert (finished.out / "pareto_pgd.png").read_bytes()[:4] == b"\x89PNG"
    assert "](pareto_pgd.png)" in report  # every plot drawn is in the report
    assert not (finished.out / "transfer_vs_compression_pgd.png").exists()  # one ratio: no such plot


def test_resume_after_an_interrupted_run_loses_and_redoes_nothing(tmp_path, monkeypatch):
    config = small_config(
        defences=[], int8=False, attacks=["fgsm"], whitebox_attacks=[], epochs=3, finetune_epochs=1
    )
    calls = []
    original = executors_module.run_task

    def flaky(task, deps, ctx):
        if task.kind == "cell":
            calls.append(task.id)
            if len(calls) == 2:
                raise KeyboardInterrupt  # killed mid-run
        return original(task, deps, ctx)

    monkeypatch.setattr(executors_module, "run_task", flaky)
    with pytest.raises(KeyboardInterrupt):
        run(config, out=tmp_path, progress=False)
    first = list(calls)
    calls.clear()
    monkeypatch.setattr(
        executors_module, "run_task", lambda t, d, c: (calls.append(t.id), original(t, d, c))[1]
    )
    results = run(config, out=tmp_path, progress=False)
    cells = [c for c in calls if c.startswith("cell-")]
    assert first[0] not in cells and len(cells) == len(results.rows) - 1
    assert not [c for c in calls if c.startswith("source-")]  # the trained model was reused
    calls.clear()
    again = run(config, out=tmp_path, progress=False)
    assert calls == [] and again.rows == results.rows


def test_rerun_without_out_resumes_the_unfinished_run_of_the_same_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = small_config(
        defences=[],
        int8=False,
        attacks=["fgsm"],
        whitebox_attacks=[],
        methods=["magnitude"],
        sanity_checks=False,
        epochs=3,
        finetune_epochs=1,
    )  # what is resumed matters here, not how well the models learn
    original = executors_module.run_task
    calls = []

    def interrupted(task, deps, ctx):
        if task.kind == "cell" and task.spec.target == "magnitude@4x":
            raise KeyboardInterrupt
        calls.append(task.kind)
        return original(task, deps, ctx)

    monkeypatch.setattr(executors_module, "run_task", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(config, progress=False)
    monkeypatch.setattr(executors_module, "run_task", original)
    first = list((tmp_path / "gap-art-results").iterdir())
    results = run(config, progress=False)
    assert results.out.resolve() == first[0].resolve() and len(first) == 1
    other = run(replace(config, attacks=["pgd"]), progress=False)
    assert other.out.resolve() != results.out.resolve()  # another configuration, another folder
    monkeypatch.setattr("time.strftime", lambda fmt: results.out.name)  # started within the same second
    third = run(replace(config, attacks=["mifgsm"]), progress=False)
    assert third.out.name.startswith(f"{results.out.name}-") and not third.failed
    assert third.out.resolve() != other.out.resolve()  # "other" may have started in that second too
    again = run(config, progress=False)
    assert again.out.resolve() != results.out.resolve()  # that run had finished: start afresh


def test_changing_one_setting_recomputes_only_what_it_determines(tmp_path):
    config = small_config(
        defences=[], int8=False, attacks=["fgsm"], whitebox_attacks=[], methods=["magnitude"]
    )
    graph = build_graph(config)
    other = build_graph(replace(config, finetune_epochs=3))
    changed = set(other.tasks) - set(graph.tasks)
    kinds = sorted(getattr(other.tasks[t].spec, "name", other.tasks[t].kind) for t in changed)
    assert kinds == ["cell", "magnitude@4x"]  # the pruned target and its one cell
    assert build_graph(config).tasks.keys() == graph.tasks.keys()  # ids are stable


def test_a_crash_in_one_cell_is_recorded_and_the_run_goes_on(tmp_path, break_cell, warm):
    config = small_config(defences=[], int8=False, attacks=["fgsm"], whitebox_attacks=[])
    break_cell("magnitude@4x")
    results = run(config, out=warm(tmp_path), progress=False)
    failed = results.failed
    assert [r["target"] for r in failed] == ["magnitude@4x"] and "boom" in failed[0]["error"]
    assert len(results.rows) == 3 and "Failed cells" in (tmp_path / "report.md").read_text()


def test_config_file_round_trip(tmp_path):
    config = small_config(seeds=[1, 2], eps=0.1)
    path = tmp_path / "study.json"
    path.write_text(json.dumps(config.to_dict()))
    assert load_config_file(path) == config
    toml = tmp_path / "study.toml"
    toml.write_text('preset = "fashion"\ncompression = [2.0, 32.0]\nattacks = ["pgd"]\n')
    loaded = load_config_file(toml)
    assert (
        loaded.dataset == "fashion-mnist" and loaded.compression == [2.0, 32.0] and loaded.attacks == ["pgd"]
    )


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"methods": ["lottery"]}, "methods must be one of .*got 'lottery'"),
        ({"attacks": ["deepfool"]}, "attacks: unknown"),
        ({"defences": ["magic"]}, "defences: unknown"),
        ({"compression": [0.9]}, "compression must be a number >= 1"),
        ({"eps": 3.0}, r"eps must be in \(0, 1.0\]"),
        ({"dataset": "svhn"}, "dataset must be one of"),
        ({"arch": "nonet"}, "arch must be one of"),
        ({"seeds": []}, "seeds"),
    ],
)
def test_bad_settings_name_themselves(changes, match):
    with pytest.raises(ConfigError, match=match):
        BenchConfig.from_dict(changes)


def test_command_line_warnings_are_one_line(tmp_path):
    from click.testing import CliRunner

    from gap_art.cli import main

    old = tmp_path / "old.toml"
    old.write_text('model = "small-cnn"\n')
    out = CliRunner().invoke(main, ["bench", "--config", str(old), "--dry-run"])
    assert out.exit_code == 0 and "Warning: config key 'model' is deprecated: use 'arch'" in out.output
    assert "FutureWarning" not in out.output


def test_unknown_config_keys_and_presets(tmp_path):
    with pytest.raises(ConfigError, match="unknown config keys \\['colour'\\]"):
        BenchConfig.from_dict({"colour": "red"})
    with pytest.raises(ConfigError, match="preset must be one of"):
        preset("huge")
    bad = tmp_path / "bad.toml"
    bad.write_text("this is = = not toml")
    with pytest.raises(ConfigError, match="not valid"):
        load_config_file(bad)


def test_the_committed_studies_configs_load_and_name_their_settings():
    """benchmarks/configs/ keeps the settings of committed studies whose preset has since
    changed: each file is a valid config, and harden-4000.toml is the 0.2.0 harden preset (the
    preset, now harden-quick, has since added the pool hardening and issue 36's attacks)."""
    folder = Path(__file__).parents[1] / "benchmarks" / "configs"
    configs = {path.stem: load_config_file(path) for path in folder.glob("*.toml")}
    old, now = configs["harden-4000"], preset("harden-quick")
    assert (old.n_train, old.n_test, old.seeds) == (4000, 300, [0, 1, 2])
    without_pool = [method for method in now.methods if not method.endswith("+pool")]
    assert without_pool != now.methods  # today's preset includes the pool hardening
    assert {"difgsm", "tifgsm", "vmifgsm"} <= set(now.attacks) and "apgd-dlr" in now.whitebox_attacks
    cut = {"n_train": 4000, "n_test": 300, "seeds": [0, 1, 2], "pool_replicas": old.pool_replicas}
    attacks = {"attacks": old.attacks, "whitebox_attacks": old.whitebox_attacks}  # issue 36's since
    assert replace(now, methods=without_pool, **cut, **attacks) == old  # and differs in those only


def test_threat_models_on_digits(tmp_path, warm):
    config = small_config(
        methods=["gap-grad"],
        attacks=["pgd"],
        defences=[],
        int8=False,
        threat_models=["dense", "independent", "replica", "ensemble"],
        whitebox_attacks=["pgd", "fgsm"],  # FGSM white-box only: from the dense model, not every attacker
        sanity_checks=False,
    )
    results = run(config, out=warm(tmp_path), progress=False)
    cells = {(r["target"], r["threat_model"]): r for r in results.rows if r["attack"] == "pgd"}
    fgsm = [r for r in results.rows if r["attack"] == "fgsm"]
    assert {(r["target"], r["threat_model"]) for r in fgsm} == {("dense", "dense"), ("gap-grad@4x", "dense")}
    assert all(r["whitebox_accuracy"] is not None for r in fgsm)
    assert set(cells) == {
        ("dense", "dense"),
        ("dense", "independent"),
        ("gap-grad@4x", "dense"),
        ("gap-grad@4x", "independent"),
        ("gap-grad@4x", "replica"),
        ("gap-grad@4x", "ensemble"),
    }
    assert not results.failed
    # another model's examples transfer less than the model's own (the natural gap)
    assert (
        cells[("dense", "independent")]["transfer_accuracy"] > cells[("dense", "dense")]["transfer_accuracy"]
    )
    gap = [r for r in results.rows if r["target"] == "gap-grad@4x"]
    worst = gap[0]["worst_case_transfer_accuracy"]
    assert all(r["worst_case_transfer_accuracy"] == worst for r in gap)
    assert worst <= min(r["transfer_accuracy"] for r in gap)
    report = (tmp_path / "report.md").read_text()
    attackers = report.split("## Who attacks")[1].splitlines()
    header = next(line for line in attackers if line.startswith("| target"))
    assert all(name in header for name in ("dense", "independent", "replica", "ensemble"))
    own = next(line for line in attackers if line.startswith("| (on the attacker's own model)"))
    dense_own = [cell.strip() for cell in own.split("|")][3]  # the dense attacker's column
    assert dense_own == f"{cells[('dense', 'dense')]['source_whitebox_accuracy']:.3f}"
    from gap_art.bench.threats import THREATS

    assert f"replica: {THREATS.get('replica').description}" in report  # the registry describes each
    assert "## Pruning methods under FGSM (from the dense model)" in report


def test_security_curve_rows_and_plot(tmp_path, warm):
    config = small_config(
        methods=["magnitude"],
        attacks=["pgd"],
        defences=[],
        int8=False,
        curve_eps=[0.5, 1.0, 2.0],
        sanity_checks=False,
    )
    results = run(config, out=warm(tmp_path), progress=False)
    dense = sorted((r["eps"], r["transfer_accuracy"]) for r in results.rows if r["target"] == "dense")
    assert [e for e, _ in dense] == pytest.approx([0.1, 0.2, 0.4])
    assert dense[0][1] >= dense[1][1] >= dense[2][1]
    assert (tmp_path / "security_curve_pgd.png").is_file()


def test_tasks_name_the_role_of_every_dependency():
    """A task reads its dependencies by role, never by position: an int8 target's second
    dependency is its float parent, a pruned target's is the validation craft."""
    from gap_art.bench import BenchConfig, build_graph
    from gap_art.bench.graph import Dependencies
    from gap_art.bench.target_spec import TargetResult
    from gap_art.bench.targets import DenseSpec
    from gap_art.bench.task_results import CraftResult, ModelResult, SourceResult

    graph = build_graph(
        BenchConfig(methods=["magnitude"], compression=[4.0], attacks=["fgsm"], defences=["jpeg"])
    )
    roles = {t.spec.name: t.roles for t in graph.tasks.values() if t.kind == "target"}
    assert roles["dense"] == roles["magnitude@4x"] == roles["art:jpeg"] == ("source", "validation")
    assert roles["magnitude@4x+int8"] == ("source", "parent")
    cell = graph.cells[0]
    assert cell.roles == ("target", "craft") and graph.tasks[cell.dep("target")].kind == "target"
    dense = TargetResult(spec=DenseSpec(0, "dense", "dense"), checkpoint="c.pt")
    source, pool = SourceResult(checkpoint="a.pt"), [SourceResult(checkpoint="b.pt"), dense]
    deps = Dependencies(["source", "pool", "pool"], [source, *pool])
    assert deps.one("source", SourceResult) is source and deps.all("pool", ModelResult) == pool
    assert deps.get("validation", CraftResult) is None and list(deps) == [source, *pool]
    with pytest.raises(KeyError, match="2 dependencies play 'pool'"):
        deps.get("pool", ModelResult)
    with pytest.raises(KeyError, match="no dependency plays 'validation'"):
        deps.one("validation", CraftResult)
    with pytest.raises(TypeError, match="the 'source' dependency is a SourceResult, not a CraftResult"):
        deps.one("source", CraftResult)


def test_a_rerun_says_how_much_it_resumes(warm, tmp_path, caplog):
    """Resuming is said, not silent: how many tasks and cells the folder already holds."""
    import logging

    from gap_art.bench import run
    from gap_art.bench.resume import resumed

    config = small_config()
    folder = warm(tmp_path)  # every model and example of the small study, none of its cells
    graph = build_graph(config)
    already = resumed(graph, Store(folder))
    tasks = len({t.id for root in graph.cells + graph.extras for t in graph.order(root)}) - len(graph.cells)
    assert already.tasks_done == already.tasks == tasks and already.cells_done == 0
    with caplog.at_level(logging.INFO, logger="gap_art"):
        run(config, out=folder, progress=False)
    assert f"resuming: {tasks} of {tasks} tasks and 0 of {len(graph.cells)} cells" in caplog.text
    assert resumed(graph, Store(folder)).cells_done == len(graph.cells)


def test_autoattack_checks_every_white_box_target_on_a_seeded_subsample(tmp_path, warm, monkeypatch):
    """``autoattack_n``: AutoAttack runs white-box on that many of each seed's test images,
    on every target attacked white-box under the primary attack, on the study's attack backend
    (torchattacks' standard version by default); the report shows it and the dense model's row
    gets its own "at full strength" check."""
    crafted = []

    def recorded(classifier, x, y, attack):
        crafted.append(attack)
        return craft_examples(classifier, x, y, attack)

    monkeypatch.setattr(tasks_module, "craft_examples", recorded)
    config = small_config(methods=["magnitude"], defences=[], int8=False, attacks=["pgd"], autoattack_n=12,
                          sanity_checks=False)  # fmt: skip
    results = run(config, out=warm(tmp_path), progress=False)
    backends = {attack.backend for attack in crafted if attack.attack == "autoattack"}
    assert backends == {config.attack_backend} == {"torchattacks"}
    checked = {r["target"]: r for r in results.rows if r.get("autoattack_n") is not None}
    assert set(checked) == {"dense", "magnitude@4x"} and not results.failed
    assert all(r["autoattack_n"] == 12 and 0 <= r["autoattack_accuracy"] <= 1 for r in checked.values())
    report = (tmp_path / "report.md").read_text()
    assert "AutoAttack (subsample, white-box)" in report and "autoattack at full strength white-box" in report
    with pytest.raises(ValueError, match="autoattack_n"):
        small_config(autoattack_n=-1).validate(files=False)
