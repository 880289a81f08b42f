"""A user's own model through the bench, `gap-art evaluate`'s attackers, hardened `gap-art
prune`, and a source from another framework (issue 16)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from gap_art.cli import main
from gap_art.evaluation import evaluate_transfer


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def state_dict_file(tmp_path, digits_model):
    """The trained digits CNN saved the plain PyTorch way."""
    path = tmp_path / "weights.pt"
    torch.save(digits_model.state_dict(), path)
    return path


def test_bench_studies_the_users_checkpoint_for_every_seed(tmp_path, state_dict_file, digits_model, digits):
    out = tmp_path / "study"
    args = ["bench", "--source-checkpoint", state_dict_file, "--arch", "small-cnn", "--methods", "magnitude"]
    args += ["--compression", "2", "--attacks", "fgsm", "--whitebox-attacks", "none", "--defences", "none"]
    # what this test asserts on, no more (--epochs: the independent attackers' training)
    args += ["--seeds", "0,1", "--no-int8", "--no-sanity-checks", "--epochs", "3"]
    result = invoke(*args, "--n-test", 100, "--threat-models", "dense,independent", "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    rows = [r for r in json.loads((out / "results.json").read_text())["rows"] if r["target"] == "dense"]
    xt, yt = digits.numpy("test")
    with torch.no_grad():
        predictions = digits_model(torch.from_numpy(xt)).argmax(1).numpy()
    from gap_art.runtime import seeded_subset

    keep = seeded_subset(len(xt), 100, 0)
    expected = float((predictions[keep] == yt[keep]).mean())
    dense = [r["clean_accuracy"] for r in rows if r["threat_model"] == "dense"]
    assert dense == [pytest.approx(expected)] * 2  # both seeds study the same, untouched model


def test_bench_refuses_a_checkpoint_of_another_architecture(tmp_path, state_dict_file, digits_model, digits):
    from gap_art.checkpoint import save_checkpoint

    wrong = invoke("bench", "--source-checkpoint", state_dict_file, "--arch", "lenet", "--dry-run")
    assert wrong.exit_code == 2 and "--source-checkpoint" in wrong.output and "Traceback" not in wrong.output
    checkpoint = save_checkpoint(tmp_path / "model.pt", digits_model, "small-cnn", digits.info)
    other = invoke(
        "bench", "--source-checkpoint", checkpoint, "--arch", "small-cnn", "--dataset", "fashion-mnist"
    )
    assert other.exit_code == 2 and "(1, 28, 28)" in other.output
    missing = invoke("bench", "--source-checkpoint", tmp_path / "nope.pt", "--dry-run")
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_evaluate_crafts_from_each_attacker_named(tmp_path, state_dict_file, digits_model, digits):
    from gap_art.checkpoint import save_checkpoint

    source = save_checkpoint(tmp_path / "model.pt", digits_model, "small-cnn", digits.info)
    torch.manual_seed(1)
    theirs = digits_model.__class__()
    theirs.load_state_dict({k: v + 0.01 * torch.randn_like(v) for k, v in digits_model.state_dict().items()})
    independent = save_checkpoint(tmp_path / "theirs.pt", theirs, "small-cnn", digits.info)
    common = ["evaluate", "--source", source, "--target", f"mine={state_dict_file}", "--arch", "small-cnn"]
    result = invoke(
        *common,
        "--threat-models",
        "dense,independent,ensemble",
        "--independent",
        independent,
        "--n-test",
        100,
    )
    assert result.exit_code == 0, result.output
    assert all(name in result.output for name in ("dense", "independent", "ensemble"))
    result = invoke(*common, "--threat-models", "independent", "--n-test", 50, "--out", tmp_path / "run")
    assert result.exit_code == 2 and "--independent" in result.output
    replica = invoke(*common, "--threat-models", "replica")
    assert replica.exit_code == 2 and "--source-checkpoint" in replica.output
    ok = invoke(*common, "--n-test", 50, "--out", tmp_path / "run")
    assert ok.exit_code == 0 and "| mine" in (tmp_path / "run" / "report.md").read_text()


def test_prune_hardens_with_a_method_modifier(tmp_path, state_dict_file):
    out = tmp_path / "hardened.pt"
    args = ["prune", state_dict_file, "--arch", "small-cnn", "--method", "magnitude+tat", "--eps", 0.3]
    result = invoke(*args, "--finetune-epochs", 1, "--out", out)
    assert result.exit_code == 0, result.output
    assert "magnitude+tat at 4x: 4.00x" in result.output and out.is_file()
    typo = invoke(*args[:-4], "--method", "magnitude+tta", "--out", out)
    assert typo.exit_code == 2 and "did you mean 'tat'" in typo.output


def test_a_source_from_another_framework_crafts_with_arts_attacks(digits, classifier):
    from art.estimators.classification.scikitlearn import ScikitlearnLogisticRegression
    from sklearn.linear_model import LogisticRegression

    from gap_art.classifiers import to_art_classifier

    x, y = digits.numpy("train")
    xt, yt = digits.numpy("test")
    flat = LogisticRegression(max_iter=500).fit(x.reshape(len(x), -1), y)
    source = ScikitlearnLogisticRegression(flat, clip_values=(0.0, 1.0))
    target = to_art_classifier(
        torch.nn.Sequential(torch.nn.Unflatten(1, (1, 8, 8)), classifier.model), digits.info, device="cpu"
    )
    target = type(target)(**{**target.get_params(), "input_shape": (64,)})
    results = evaluate_transfer(
        source, {"cnn": target}, xt.reshape(len(xt), -1), yt, "pgd", eps=0.3, progress=False
    )
    assert results[0].source_whitebox_accuracy < 0.2  # ART's PGD ran on the logistic regression
    assert results[0].transfer_accuracy < results[0].clean_accuracy
    with pytest.raises(ValueError, match="backend='art'"):
        evaluate_transfer(source, {"cnn": target}, xt.reshape(len(xt), -1), yt, "pgd", backend="torchattacks")
    blackbox = np.zeros(1)
    with pytest.raises(TypeError, match="differentiable ART classifier"):
        evaluate_transfer(blackbox, {"cnn": target}, xt, yt)


def test_an_int8_program_loads_in_a_fresh_process(tmp_path, state_dict_file):
    """What a user does: quantize in one process, evaluate in another (nothing imported before)."""
    import subprocess
    import sys

    program = tmp_path / "int8.pt2"
    quantized = invoke(
        "quantize", state_dict_file, "--arch", "small-cnn", "--n-calibration", 256, "--out", program
    )
    assert quantized.exit_code == 0, quantized.output
    args = ["evaluate", "--source", state_dict_file, "--arch", "small-cnn", "--target", f"int8={program}"]
    done = subprocess.run(
        [sys.executable, "-m", "gap_art", *map(str, args), "--n-test", "50", "--attacks", "pgd"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "int8" in done.stdout and "pgd" in done.stdout
    assert "KernelPreference" not in done.stderr  # torch's notice on importing torchao is silenced
