import json
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from gap_art import __version__
from gap_art.cli import main

SMALL_BENCH = (
    "bench",
    "--methods",
    "magnitude",
    "--compression",
    "2",
    "--attacks",
    "fgsm",
    "--whitebox-attacks",
    "none",
    "--defences",
    "none",
    "--quiet",
)
"""A study of two targets and one attack: the CLI's tests run it in seconds."""


def invoke(*args):
    return CliRunner().invoke(main, list(args))


def test_the_version_is_the_packages():
    from importlib.metadata import version

    assert __version__ == version("gap-art")


def test_help_and_version():
    assert invoke("--help").exit_code == 0 and "bench" in invoke("--help").output
    result = invoke("--version")
    assert result.exit_code == 0 and __version__ in result.output
    assert "--preset" in invoke("bench", "--help").output


def test_usage_errors_exit_2_with_one_clear_line_and_no_traceback(tmp_path):
    cases = [
        (["bench", "--preset", "huge"], "Invalid value for '--preset'"),
        (["bench", "--preset", "quik"], "did you mean 'quick'?"),
        (["bench", "--device", "tpu"], "Invalid value for '--device'"),
        (["bench", "--n-test", "0"], "--n-test must be an integer >= 1"),
        (["bench", "--finetune-patience", "0"], "--finetune-patience must be an integer >= 1"),
        (["bench", "--gap-eps", "0.1,x"], "expected comma-separated floats"),
        (["bench", "--methods", "lottery"], "--methods must be one of"),
        (["bench", "--attacks", "deepfool"], "attacks: unknown"),
        (["bench", "--defences", "magic"], "defences: unknown"),
        (["bench", "--compression", "0.5"], "compression must be a number >= 1 (1 keeps every weight"),
        (["bench", "--compression", "two"], "expected comma-separated floats"),
        (["bench", "--eps", "5"], "eps must be in"),
        (["bench", "--threat-models", "psychic"], "--threat-models: unknown 'psychic'"),
        (["bench", "--pool-sources", "replica"], "--pool-sources: unknown 'replica' (did you mean"),
        (["bench", "--attacks", "pgd,fgsm,pgd"], "--attacks must name each item once, got ['pgd']"),
        (["report", str(tmp_path)], "holds no results.json"),
        (["compare", str(tmp_path), str(tmp_path)], "holds no results.json"),
        (["report", str(tmp_path / "broken")], "not a readable gap-art results file"),
        (["bench", "--curve-eps", "x"], "expected comma-separated floats"),
        (["bench", "--executor", "spark"], "Invalid value for '--executor'"),
        (["bench", "--config", str(tmp_path / "missing.toml")], "cannot be read"),
    ]
    (tmp_path / "keys.json").write_text(json.dumps({"colour": "red"}))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "results.json").write_text("{not json")
    cases.append((["bench", "--config", str(tmp_path / "keys.json")], "unknown config keys"))
    for args, message in cases:
        result = invoke(*args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output and "Traceback" not in result.output


def test_a_gpu_that_is_not_here_is_a_usage_error_and_a_gpu_study_still_reads(tmp_path, monkeypatch):
    import torch

    from gap_art.bench.config import BenchConfig, ConfigError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for args in (["train", "--out", str(tmp_path / "m.pt")], ["bench"]):
        result = invoke(*args, "--device", "cuda")
        assert result.exit_code == 2, (args, result.output)
        assert "no CUDA GPU is available" in result.output and "Traceback" not in result.output
    with pytest.raises(ConfigError, match="device 'cuda' asked for"):
        BenchConfig(device="cuda").validate(files=True)
    assert BenchConfig(device="cuda").validate(files=False).device == "cuda"  # a GPU study's config


def test_unwritable_out_is_a_usage_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = invoke("bench", "--out", str(blocker / "sub"), "--quiet")
    assert result.exit_code == 2 and "not writable" in result.output and "Traceback" not in result.output


def test_bench_runs_a_small_study_and_prints_the_table(tmp_path):
    result = invoke(
        *SMALL_BENCH, "--n-test", "100", "--epochs", "5", "--finetune-epochs", "1", "--no-sanity-checks",
        "--out", str(tmp_path),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "magnitude@2x" in result.output and "report.md" in result.output
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert {r["target"] for r in rows} == {"dense", "magnitude@2x", "dense+int8", "magnitude@2x+int8"}
    for name in ("results.json", "results.csv", "report.md", "report.html"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644  # colleagues can read a shared --out

    (tmp_path / "report.md").unlink()
    redrawn = invoke("report", str(tmp_path))
    assert redrawn.exit_code == 0 and (tmp_path / "report.md").read_text().startswith(
        "# gap-art bench report"
    )
    compared = invoke("compare", str(tmp_path), str(tmp_path), "--attack", "fgsm")
    assert compared.exit_code == 0 and "magnitude@2x" in compared.output and "+0.000" in compared.output


def test_none_sets_a_number_whose_none_means_something(tmp_path):
    """``--finetune-patience none`` trains every epoch (no early stopping) and ``--n-test none``
    attacks every test image, as ``"none"`` does in a config file (TOML has no null); anything
    else that is not a number is a usage error naming the option."""
    config_file = tmp_path / "study.toml"
    config_file.write_text('finetune_patience = "none"\nn_train = "none"\n')
    result = invoke("bench", "--dry-run", "--config", str(config_file), "--n-test", "none", "--eps", "None")
    assert result.exit_code == 0, result.output
    config = json.loads(result.output)["config"]
    assert [config[k] for k in ("finetune_patience", "n_train", "n_test", "eps")] == [None] * 4
    bad = invoke("bench", "--dry-run", "--finetune-patience", "lots")
    assert bad.exit_code == 2 and "--finetune-patience" in bad.output and "Traceback" not in bad.output
    assert "int or none" in bad.output


def test_dry_run_prints_the_plan_and_runs_nothing(tmp_path):
    from gap_art.bench import plan, preset

    result = invoke(
        "bench", "--dry-run", "--methods", "gap-grad", "--compression", "4", "--out", str(tmp_path)
    )
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    expected = plan(
        replace(preset("quick"), methods=["gap-grad"], compression=[4.0])
    )  # the CLI starts from it
    assert printed["cells"] == expected["cells"] > 0 and printed["tasks"] == expected["tasks"]
    assert printed["config"]["methods"] == ["gap-grad"] and not any(tmp_path.iterdir())


def test_failed_cells_exit_1_unless_allowed(tmp_path, break_cell):
    break_cell("magnitude@2x")
    args = [*SMALL_BENCH, "--no-sanity-checks", "--n-test", "60", "--epochs", "2", "--finetune-epochs", "0"]
    failing = invoke(*args, "--out", str(tmp_path / "a"))
    assert failing.exit_code == 1 and "1 failed" in failing.output
    allowed = invoke(*args, "--out", str(tmp_path / "b"), "--allow-failures")
    assert allowed.exit_code == 0


def test_a_failed_sanity_check_is_named_at_exit(tmp_path, monkeypatch):
    """Exit 1 says which check failed, what it measured and which attacks it marks."""
    from gap_art.evaluation.sanity import SanityCheck

    broken = SanityCheck(
        "pgd converged (2x steps)", False, 0.05, "|success(2x steps) - success| < 0.02", ("pgd",)
    )
    monkeypatch.setattr("gap_art.bench.tasks.run_sanity_checks", lambda *args, **kwargs: [broken])
    args = [*SMALL_BENCH, "--n-test", "60", "--epochs", "2", "--finetune-epochs", "0"]
    failing = invoke(*args, "--out", str(tmp_path / "a"))
    assert failing.exit_code == 1 and "1 sanity check(s) failed" in failing.output
    assert (
        "seed 0: pgd converged (2x steps) failed: measured 0.05, requires |success(2x steps)"
        in failing.output
    )
    assert "marks pgd" in failing.output


def test_prune_says_when_the_model_it_saved_does_not_classify(tmp_path, digits_model):
    """1000x leaves a model at chance: the file is saved, the command says so and exits 1."""
    from gap_art.checkpoint import save_checkpoint
    from gap_art.data import dataset_info

    checkpoint = save_checkpoint(tmp_path / "model.pt", digits_model, "small-cnn", dataset_info("digits"))
    args = ["prune", str(checkpoint), "--method", "magnitude", "--out", str(tmp_path / "broken.pt")]
    broken = invoke(*args, "--compression", "1000")
    assert broken.exit_code == 1 and "is at chance" in broken.output and "Traceback" not in broken.output
    assert "the model is saved at" in broken.output and (tmp_path / "broken.pt").is_file()
    fine = invoke(*args, "--compression", "2")
    assert fine.exit_code == 0 and "warning" not in fine.output


def test_list_names_every_catalogue():
    result = invoke("list")
    assert result.exit_code == 0
    sections = ("presets:", "methods", "attacks", "ART defences", "threat models", "pool sources", "models")
    for section in (*sections, "datasets"):
        assert section in result.output
    assert "gap-grad" in result.output and "fbf" in result.output and "fashion-mnist" in result.output
    presets = dict(line.split(None, 1) for line in result.output.split("\n\n")[0].splitlines()[1:])
    assert "30,000 training / 1,000 test images" in presets["harden"]  # what tells it from -quick
    assert "1,500 training / 200 test images" in presets["harden-quick"]


def test_train_writes_a_checkpoint(tmp_path):
    from gap_art.checkpoint import load_checkpoint

    result = invoke("train", "--epochs", "2", "--out", str(tmp_path / "m.pt"), "--device", "cpu")
    assert result.exit_code == 0, result.output
    model, info, extra = load_checkpoint(tmp_path / "m.pt")
    assert info.name == "digits" and extra["epochs"] == 2
    bad = invoke("train", "--dataset", "svhn", "--out", str(tmp_path / "x.pt"))
    assert bad.exit_code == 2 and "'--dataset': 'svhn' is not one of" in bad.output


def test_train_says_so_when_the_model_learnt_nothing(tmp_path, monkeypatch):
    """A model at chance is saved but no success: exit 1 with the chance level named."""
    import gap_art.training

    monkeypatch.setattr(gap_art.training, "evaluate_accuracy", lambda *args, **kwargs: 0.05)
    result = invoke("train", "--epochs", "1", "--out", str(tmp_path / "m.pt"), "--device", "cpu")
    assert result.exit_code == 1 and (tmp_path / "m.pt").is_file() and "Traceback" not in result.output
    assert "is at chance (always answering the most frequent class scores" in result.output


def test_prune_a_users_checkpoint_or_state_dict(tmp_path, digits_model):
    import torch

    from gap_art.checkpoint import load_checkpoint, save_checkpoint
    from gap_art.data import dataset_info
    from gap_art.pruning import measure_compression, prunable_parameters

    checkpoint = save_checkpoint(tmp_path / "model.pt", digits_model, "small-cnn", dataset_info("digits"))
    result = invoke(
        "prune",
        str(checkpoint),
        "--method",
        "magnitude",
        "--compression",
        "4",
        "--finetune-epochs",
        "1",
        "--device",
        "cpu",
        "--out",
        str(tmp_path / "pruned.pt"),
    )
    assert result.exit_code == 0, result.output
    assert "4.00x achieved" in result.output and "classifier.3.weight" in result.output
    pruned, info, extra = load_checkpoint(tmp_path / "pruned.pt")
    assert measure_compression(pruned, prunable_parameters(pruned)).compression == pytest.approx(
        4.0, rel=1e-3
    )
    assert int((pruned.classifier[3].weight == 0).sum()) == 0 and extra["method"] == "magnitude"

    torch.save(digits_model.state_dict(), tmp_path / "weights.pt")  # a plain PyTorch user's file
    plain = invoke(
        "prune",
        str(tmp_path / "weights.pt"),
        "--arch",
        "small-cnn",
        "--method",
        "random",
        "--compression",
        "2",
        "--device",
        "cpu",
        "--out",
        str(tmp_path / "random.pt"),
    )
    assert plain.exit_code == 0, plain.output
    assert load_checkpoint(tmp_path / "random.pt")[2]["method"] == "random"

    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    for args, message in [
        ([str(tmp_path / "weights.pt")], "--arch"),
        ([str(tmp_path / "junk.pt")], "not a readable PyTorch file"),
        ([str(tmp_path / "weights.pt"), "--arch", "lenet"], "does not fit lenet"),
        ([str(checkpoint), "--compression", "0.5"], "compression must be"),
        ([str(checkpoint), "--method", "magnitud"], "did you mean 'magnitude'"),
    ]:
        bad = invoke("prune", *args, "--out", str(tmp_path / "x.pt"))
        assert bad.exit_code == 2 and message in bad.output and "Traceback" not in bad.output, (
            args,
            bad.output,
        )


def test_quantize_writes_a_program_that_loads_without_gap_art(tmp_path, digits_model, digits):
    import torch

    from gap_art.checkpoint import save_checkpoint

    checkpoint = save_checkpoint(tmp_path / "model.pt", digits_model, "small-cnn", digits.info)
    result = invoke("quantize", str(checkpoint), "--n-calibration", "256", "--out", str(tmp_path / "m.pt2"))
    assert result.exit_code == 0, result.output
    assert "int8 (x86)" in result.output
    program = torch.export.load(str(tmp_path / "m.pt2")).module()
    x, y = digits.test.tensors
    accuracy = float((program(x).argmax(1) == y).float().mean())
    assert accuracy > 0.9 and f"-> {accuracy:.4f}" in result.output
    bad = invoke("quantize", str(tmp_path / "m.pt2"), "--out", str(tmp_path / "x.pt2"))
    assert bad.exit_code == 2 and "Traceback" not in bad.output


def test_evaluate_a_users_models_end_to_end(tmp_path, digits_model, digits):
    from gap_art.checkpoint import save_checkpoint

    source = str(save_checkpoint(tmp_path / "model.pt", digits_model, "small-cnn", digits.info))
    pruned, program = str(tmp_path / "pruned.pt"), str(tmp_path / "pruned-int8.pt2")
    assert (
        invoke(
            "prune",
            source,
            "--method",
            "magnitude",
            "--compression",
            "4",
            "--finetune-epochs",
            "0",
            "--out",
            pruned,
        ).exit_code
        == 0
    )
    assert invoke("quantize", pruned, "--n-calibration", "256", "--out", program).exit_code == 0
    result = invoke(
        "evaluate",
        "--source",
        source,
        "--target",
        f"pruned={pruned}",
        "--target",
        f"int8={program}",
        "--attacks",
        "fgsm,pgd",
        "--eps",
        "0.2",
        "--n-test",
        "200",
        "--out",
        str(tmp_path / "run"),
    )
    assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "run" / "results.json").read_text())["rows"]
    assert [(r["target"], r["attack"]) for r in rows] == [
        (target, attack) for attack in ("fgsm", "pgd") for target in ("dense", "pruned", "int8")
    ]
    assert all(r["n"] == 200 and 0 <= r["transfer_accuracy"] <= r["clean_accuracy"] + 0.05 for r in rows)
    assert {r["family"] for r in rows} == {"baseline", "pruning", "quantization"}
    pruned_row = next(r for r in rows if r["target"] == "pruned")
    assert pruned_row["compression"] == pytest.approx(4.0, rel=0.01) and pruned_row["layer_sparsity"]
    report = invoke("report", str(tmp_path / "run"))  # the bench's reader takes evaluate's folder
    assert report.exit_code == 0, report.output
    text = (tmp_path / "run" / "report.md").read_text()
    # the report describes what evaluate did: every target (the .pt2 program too), its own
    # settings, no bench default, no None, nothing evaluate cannot run
    assert text.startswith("# gap-art evaluate report") and "pruned: worst-attacker transfer accuracy" in text
    for target, kind in (("dense", "source"), ("pruned", "float model"), ("int8", "int8 program")):
        assert any(line.startswith(f"| {target} ") and kind in line for line in text.splitlines()), target
    for absent in ("None", "patience", "GAP's calibration", "--threat-models all", "no method has a model"):
        assert absent not in text, absent
    assert "scored as given: gap-art evaluate prunes, fine-tunes and selects nothing" in text
    compared = invoke("compare", str(tmp_path / "run"), str(tmp_path / "run"))
    assert compared.exit_code == 0, compared.output
    bad = invoke("evaluate", "--source", source, "--target", "no-equals-sign")
    assert bad.exit_code == 2 and "NAME=PATH" in bad.output
    (tmp_path / "junk.pt2").write_text("not a program")
    junk = invoke("evaluate", "--source", source, "--target", f"j={tmp_path / 'junk.pt2'}")
    assert junk.exit_code == 2 and "not a readable torch.export program" in junk.output
    too_many = invoke("evaluate", "--source", source, "--target", f"p={pruned}", "--n-test", "5000")
    assert too_many.exit_code == 2 and "--n-test must be between 1 and 450" in too_many.output
    Path(source).unlink()  # a finished study reads without the models it was made of
    again = invoke("report", str(tmp_path / "run"))
    assert again.exit_code == 0, again.output


def test_a_bug_shows_its_traceback_exit_1_and_asks_for_a_report(monkeypatch):
    """A ValueError that is not gap-art's ParameterError is a bug, not the user's mistake."""
    import gap_art.bench

    def broken(config=None):
        raise ValueError("an internal inconsistency")

    monkeypatch.setattr(gap_art.bench, "plan", broken)
    result = invoke("bench", "--dry-run")
    assert result.exit_code == 1
    assert "Traceback" in result.output and "ValueError: an internal inconsistency" in result.output
    assert "This is a bug in gap-art" in result.output and "Usage:" not in result.output


def test_ctrl_c_in_bench_says_that_rerunning_resumes(monkeypatch):
    import gap_art.bench

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(gap_art.bench, "run", interrupted)
    result = invoke(*SMALL_BENCH)
    assert result.exit_code == 130 and "rerun the same command to resume" in result.output
    assert "Traceback" not in result.output


def test_log_lines_follow_the_verbosity_and_a_folder_keeps_its_configuration(tmp_path):
    tiny = (*SMALL_BENCH, "--no-int8", "--no-sanity-checks", "--epochs", "1", "--finetune-epochs", "0")
    shown = CliRunner().invoke(main, [*tiny, "--n-test", "30", "--out", str(tmp_path / "a")])
    assert shown.exit_code == 0, shown.output
    assert "train small-cnn (seed 0): " in shown.stderr  # one log line per model built
    quiet = CliRunner().invoke(main, ["-q", *tiny, "--n-test", "30", "--out", str(tmp_path / "b")])
    assert quiet.exit_code == 0 and "train small-cnn" not in quiet.output
    other = CliRunner().invoke(main, [*tiny, "--n-test", "31", "--out", str(tmp_path / "a")])
    assert other.exit_code == 2 and "n_test: 30 -> 31" in other.output and "Traceback" not in other.output
    assert json.loads((tmp_path / "a" / "config.json").read_text())["n_test"] == 30  # left as it was


def test_each_command_describes_its_own_data():
    """An option's help says what that command does: train has no MODEL to take a default from,
    and only prune fine-tunes."""
    helps = {name: invoke(name, "--help").output for name in ("train", "prune", "quantize", "export")}
    assert "default: digits" in helps["train"] and "MODEL" not in helps["train"].split("--dataset")[1][:200]
    assert "fine-tunes" in helps["prune"]
    assert all("fine-tunes" not in helps[name] for name in ("quantize", "export"))
    assert "calibrates the int8 ranges" in helps["quantize"] and "--format pt2 --int8" in helps["export"]


def test_prune_fine_tunes_to_convergence_by_default(tmp_path, digits_model, digits):
    """Like the bench: at most 30 epochs, stopping after 3 without a better held-out accuracy;
    --finetune-epochs 0 skips it and --finetune-patience 0 trains every epoch."""
    import re

    from gap_art.checkpoint import save_checkpoint

    source = str(save_checkpoint(tmp_path / "model.pt", digits_model, "small-cnn", digits.info))

    def epochs(*options):
        out = str(tmp_path / "p.pt")
        args = ("prune", source, "--method", "magnitude", "--compression", "2", *options, "--out", out)
        result = invoke(*args)
        assert result.exit_code == 0, result.output
        return int(re.search(r"fine-tuned (\d+) epoch", result.output).group(1))

    assert 1 <= epochs() <= 30
    assert epochs("--finetune-epochs", "0") == 0
    assert epochs("--finetune-epochs", "2", "--finetune-patience", "0") == 2
    bad = invoke("prune", source, "--finetune-patience", "-1", "--out", str(tmp_path / "x.pt"))
    assert bad.exit_code == 2 and "--finetune-patience" in bad.output and "Traceback" not in bad.output


def test_no_option_help_names_an_argument_its_command_does_not_take():
    """Help texts are written per command: a shared option's help that names MODEL (or FOLDER,
    FIRST, ...) on a command without that argument sends the reader looking for it."""
    import re

    import click

    from gap_art.cli import main

    root = click.Context(main)

    def params(name):
        command = main.commands[name]
        return command.get_params(click.Context(command, info_name=name, parent=root))

    arguments = {
        name: {p.human_readable_name.upper() for p in params(name) if isinstance(p, click.Argument)}
        for name in main.commands
    }
    everyone = set().union(*arguments.values())
    assert {"MODEL", "FOLDER"} <= everyone
    wrong = [
        (name, option.name, other)
        for name in main.commands
        for option in params(name)
        if isinstance(option, click.Option) and option.help
        for other in everyone - arguments[name]
        if re.search(rf"\b{other}\b", option.help)
    ]
    assert not wrong
