import json

from click.testing import CliRunner

from gap_art import __version__
from gap_art.cli import main


def invoke(*args):
    return CliRunner().invoke(main, list(args))


def test_help_and_version():
    assert invoke("--help").exit_code == 0 and "bench" in invoke("--help").output
    result = invoke("--version")
    assert result.exit_code == 0 and __version__ in result.output
    assert "--preset" in invoke("bench", "--help").output


def test_usage_errors_exit_2_with_one_clear_line_and_no_traceback(tmp_path):
    cases = [
        (["bench", "--preset", "huge"], "preset must be one of"),
        (["bench", "--methods", "lottery"], "methods: unknown 'lottery'"),
        (["bench", "--attacks", "deepfool"], "attacks: unknown"),
        (["bench", "--defences", "magic"], "defences: unknown"),
        (["bench", "--compression", "1"], "compression ratios must be numbers > 1"),
        (["bench", "--compression", "two"], "expected comma-separated floats"),
        (["bench", "--eps", "5"], "eps must be in"),
        (["bench", "--threat-models", "psychic"], "threat_models: unknown 'psychic'"),
        (["bench", "--curve-eps", "x"], "expected comma-separated floats"),
        (["bench", "--executor", "spark"], "Invalid value for '--executor'"),
        (["bench", "--config", str(tmp_path / "missing.toml")], "cannot be read"),
    ]
    (tmp_path / "keys.json").write_text(json.dumps({"colour": "red"}))
    cases.append((["bench", "--config", str(tmp_path / "keys.json")], "unknown config keys"))
    for args, message in cases:
        result = invoke(*args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output and "Traceback" not in result.output


def test_unwritable_out_is_a_usage_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = invoke("bench", "--out", str(blocker / "sub"), "--quiet")
    assert result.exit_code == 2 and "not writable" in result.output and "Traceback" not in result.output


def test_bench_runs_a_small_study_and_prints_the_table(tmp_path):
    result = invoke(
        "bench",
        "--methods",
        "magnitude",
        "--compression",
        "2",
        "--attacks",
        "fgsm",
        "--defences",
        "none",
        "--n-test",
        "100",
        "--epochs",
        "5",
        "--finetune-epochs",
        "1",
        "--out",
        str(tmp_path),
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    assert "magnitude@2x" in result.output and "report.md" in result.output
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert {r["target"] for r in rows} == {"dense", "magnitude@2x", "dense+int8", "magnitude@2x+int8"}


def test_train_writes_a_checkpoint(tmp_path):
    from gap_art.checkpoint import load_checkpoint

    result = invoke("train", "--epochs", "2", "--out", str(tmp_path / "m.pt"), "--device", "cpu")
    assert result.exit_code == 0, result.output
    model, info, extra = load_checkpoint(tmp_path / "m.pt")
    assert info.name == "digits" and extra["epochs"] == 2
    bad = invoke("train", "--dataset", "svhn", "--out", str(tmp_path / "x.pt"))
    assert bad.exit_code == 2 and "dataset must be one of" in bad.output
