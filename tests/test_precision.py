"""The ``precision`` setting: bfloat16 autocast for training and crafting, opt-in, float32
weights and examples, refused where the device would only emulate it, recorded with each task."""

from __future__ import annotations

import copy
import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import small_config
from torch.nn.utils import prune

from gap_art import runtime
from gap_art.attacks import make_attack
from gap_art.bench import ConfigError, run
from gap_art.bench.config import BenchConfig
from gap_art.bench.resume import MixedEnvironmentError
from gap_art.cli import main
from gap_art.errors import ParameterError
from gap_art.runtime import check_native_precision, computing_precision, gradient_autocast
from gap_art.training import train_model

CPU = torch.device("cpu")


def _step_dtype() -> torch.dtype:
    """The dtype a layer computes in under :func:`gradient_autocast` now."""
    with gradient_autocast(CPU):
        return torch.nn.Linear(4, 2)(torch.ones(1, 4)).dtype


def test_autocast_is_on_only_inside_a_bfloat16_block_and_restored_after_an_error():
    assert _step_dtype() == torch.float32
    with pytest.raises(RuntimeError, match="inside"), computing_precision("bfloat16"):
        assert _step_dtype() == torch.bfloat16
        with computing_precision("float32"):
            assert _step_dtype() == torch.float32
        raise RuntimeError("inside")
    assert _step_dtype() == torch.float32


def test_a_precision_that_does_not_exist_is_refused_naming_the_allowed_ones():
    with pytest.raises(
        ParameterError, match=r"precision must be one of \['float32', 'bfloat16'\], got 'fp16'"
    ):
        computing_precision("fp16").__enter__()
    with pytest.raises(ConfigError, match="precision must be one of"):
        BenchConfig(precision="bf16").validate()
    result = CliRunner().invoke(main, ["bench", "--precision", "half"])
    assert result.exit_code == 2 and "Invalid value for '--precision'" in result.output
    assert "Traceback" not in result.output


def test_bfloat16_is_refused_where_the_device_would_only_emulate_it(monkeypatch, tmp_path):
    monkeypatch.setattr(runtime, "native_bfloat16", lambda device: False)
    check_native_precision("float32", CPU)
    with pytest.raises(ParameterError, match="needs a CPU with AVX512-BF16 or AMX"):
        check_native_precision("bfloat16", CPU)
    out = tmp_path / "study"
    with pytest.raises(ConfigError, match="precision 'bfloat16' needs"):
        run(small_config(precision="bfloat16"), out=out, progress=False)
    assert not out.exists()  # refused before anything was written
    result = CliRunner().invoke(main, ["bench", "--precision", "bfloat16", "--out", str(out)])
    assert result.exit_code == 2 and "--precision 'bfloat16' needs" in result.output


def test_bfloat16_training_keeps_float32_weights_and_the_pruning_masks(digits, digits_model):
    twin = copy.deepcopy(digits_model)
    conv, twin_conv = (
        next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d)) for model in (digits_model, twin)
    )
    for layer in (conv, twin_conv):
        prune.l1_unstructured(layer, "weight", amount=0.5)
    pruned = conv.weight_mask == 0
    float32 = train_model(twin, digits.train, 1, seed=0, device="cpu", progress=False)
    with computing_precision("bfloat16"):
        losses = train_model(digits_model, digits.train, 1, seed=0, device="cpu", progress=False)
    assert all(p.dtype == torch.float32 for p in digits_model.parameters())
    assert torch.all(conv.weight[pruned] == 0)
    assert np.isfinite(losses).all() and losses != float32  # the steps did run in bfloat16


@pytest.mark.parametrize("attack", ["pgd", "cw", "autoattack"])
def test_bfloat16_crafting_gives_float32_examples_within_the_budget(classifier, digits, attack):
    x, y = digits.numpy("test")
    x, y = x[:4], y[:4]
    craft = make_attack(attack, classifier, eps=0.1, max_iter=5 if attack == "cw" else None)
    with computing_precision("bfloat16"):
        adversarial = craft.generate(x, y)
    assert adversarial.dtype == np.float32 and adversarial.shape == x.shape
    low, high = classifier.clip_values
    assert adversarial.min() >= low and adversarial.max() <= high
    if attack != "cw":  # L-inf attacks stay inside eps (CW is L2: eps does not bound it)
        assert np.abs(adversarial - x).max() <= 0.1 + 1e-6
    assert np.abs(adversarial - x).max() > 0


@pytest.mark.parametrize(("attack", "dtype"), [("pgd", torch.bfloat16), ("cw", torch.float32)])
def test_the_attacked_model_runs_in_bfloat16_unless_the_attack_declares_otherwise(
    classifier, digits, attack, dtype
):
    seen = set()
    hook = classifier.model.register_forward_hook(lambda module, inputs, output: seen.add(output.dtype))
    x, y = digits.numpy("test")
    with computing_precision("bfloat16"):
        make_attack(attack, classifier, eps=0.1, max_iter=2).generate(x[:4], y[:4])
    hook.remove()
    assert seen == {dtype}


def test_cw_stops_on_the_decision_boundary_so_it_crafts_in_float32_whatever_the_precision(classifier, digits):
    x, y = digits.numpy("test")
    craft = make_attack("cw", classifier, max_iter=10)
    float32 = craft.generate(x[:32], y[:32])
    with computing_precision("bfloat16"):
        assert np.array_equal(craft.generate(x[:32], y[:32]), float32)


def test_a_bfloat16_study_records_its_precision_and_refuses_a_float32_resume(monkeypatch, tmp_path):
    """A hardened method (attacks inside its training loop) and the int8 targets run too."""
    monkeypatch.setattr(runtime, "native_bfloat16", lambda device: True)
    config = small_config(
        methods=["magnitude+tat"],
        attacks=["pgd"],
        defences=[],
        whitebox_attacks=["pgd"],
        precision="bfloat16",
    )
    results = run(config, out=tmp_path, progress=False)
    assert results.rows and not results.failed
    written = json.loads((tmp_path / "results.json").read_text())
    assert {env["precision"] for env in written["environment"]["task_environments"]} == {"bfloat16"}
    assert "bfloat16 autocast in training and crafting" in (tmp_path / "report.md").read_text()
    with pytest.raises(MixedEnvironmentError, match="precision: 'bfloat16' -> 'float32'"):
        run(replace(config, precision="float32"), out=tmp_path, progress=False)
