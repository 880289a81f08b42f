"""The Ray executor: same rows as the local executor, resume across executors, missing extra."""

import sys
from dataclasses import replace

import pytest
from click.testing import CliRunner

from gap_art.bench import RayUnavailableError, preset, run
from gap_art.cli import main


def _config():
    return replace(
        preset("quick"),
        methods=["magnitude"],
        compression=[4.0],
        attacks=["pgd"],
        defences=["feature-squeezing"],
        n_test=100,
        epochs=3,
        finetune_epochs=2,
        sanity_checks=False,
    )


def _numbers(rows):
    return [{k: v for k, v in row.items() if not k.endswith("time_s")} for row in rows]


def test_ray_rows_equal_local_rows_and_resume_across_executors(tmp_path):
    import ray

    config = _config()
    local = run(config, out=tmp_path / "local", progress=False, cpus_per_task=1)
    ray.init(include_dashboard=False, log_to_driver=False, logging_level="ERROR", configure_logging=False)
    try:  # one local Ray for both runs on it (run() leaves a Ray it did not start running)
        on_ray = run(config, out=tmp_path / "ray", executor="ray", progress=False, cpus_per_task=1)
        assert _numbers(on_ray.rows) == _numbers(local.rows)
        assert not on_ray.failed and len(on_ray.rows) == 5  # dense, magnitude, each +int8, art:fs
        # cells finished by the local executor are not redone on Ray, and the other way round
        again = run(config, out=tmp_path / "local", executor="ray", progress=False, cpus_per_task=1)
        assert again.rows == local.rows
        assert ray.is_initialized()
    finally:
        ray.shutdown()
    back = run(config, out=tmp_path / "ray", progress=False, cpus_per_task=1)
    assert back.rows == on_ray.rows


def test_missing_ray_is_a_usage_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if gap-art[ray] were not installed
    with pytest.raises(RayUnavailableError, match=r"pip install 'gap-art\[ray\]'"):
        run(_config(), out=tmp_path, executor="ray", progress=False)
    result = CliRunner().invoke(main, ["bench", "--executor", "ray", "--out", str(tmp_path), "--quiet"])
    assert result.exit_code == 2 and "gap-art[ray]" in result.output and "Traceback" not in result.output
    assert not list(tmp_path.glob("cache/*.json"))  # refused before any work
