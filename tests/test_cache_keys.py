"""A task's id covers every input its result depends on: each configuration field, the data's
contents, the user's model code, gap-art's computing code; and a run refuses to mix
configurations or numerical environments in one results folder."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from gap_art.bench import BenchConfig, ConfigError, build_graph, preset
from gap_art.bench import inputs as study_inputs
from gap_art.bench.context import Context, UndeclaredReadError
from gap_art.bench.graph import Task, run_task
from gap_art.bench.inputs import UNKEYED_FIELDS, StudyInputs
from gap_art.bench.resume import MixedEnvironmentError, check_environments, check_same_config
from gap_art.bench.store import Store
from gap_art.bench.tasks import SourceSpec
from gap_art.checkpoint import save_checkpoint
from gap_art.data import datasets as data_module
from gap_art.models import create_model


def _base() -> BenchConfig:
    """A study in which every field matters: every threat model, an iterative method and a
    pooled one beside the quick preset's."""
    config = preset("quick")
    config.methods = [*config.methods, "gap-grad+iter", "magnitude+pool"]
    config.threat_models = ["dense", "independent", "independent-arch", "robust", "replicas", "replica"]
    return config


def _ids(config: BenchConfig) -> set[str]:
    """The ids of every task the study runs (its cells, its checks and what they need)."""
    graph = build_graph(config.validate())
    todo, seen = [t.id for t in graph.cells + graph.extras], set()
    while todo:
        task = todo.pop()
        if task not in seen:
            seen.add(task)
            todo.extend(graph.tasks[task].deps)
    return seen


@pytest.fixture(scope="module")
def base_ids() -> set[str]:
    return _ids(_base())


def _checkpoint(tmp_path: Path) -> str:
    info = data_module.DATASETS["digits"]
    path = tmp_path / "source.pt"
    save_checkpoint(path, create_model("small-cnn", info.input_shape, info.nb_classes), "small-cnn", info)
    return str(path)


ALTERNATIVES = {
    "arch": "mlp",
    "methods": ["random"],
    "compression": [3.0],
    "attacks": ["fgsm"],
    "eps": 0.1,
    "gap_eps": [0.05],
    "defences": [],
    "int8": False,
    "seeds": [1],
    "epochs": 5,
    "finetune_epochs": 7,
    "finetune_patience": None,
    "validation_fraction": 0.2,
    "prune_classifier": True,
    "rounds": 2,
    "defence_epochs": 1,
    "n_train": 500,
    "n_test": 50,
    "n_calibration": 64,
    "whitebox_attacks": [],
    "autoattack_n": 8,
    "threat_models": ["dense"],
    "independent_arch": "lenet",
    "robust_defence": "madry-pgd",
    "replicas": 2,
    "pool_sources": ["replicas"],
    "pool_replicas": 1,
    "curve_eps": [2.0],
    "training_curves": True,
    "curve_budgets": [0.02],
    "sanity_checks": False,
    "cw_kappa": 5.0,
    "attack_backend": "art",
    "split": "train",
    "mean": [0.5],
    "std": [0.25],
    "arch_kwargs": '{"in_channels": 1}',
    "data_seed": 1,
}
"""A valid other value for each field that a change of value alone exercises; the data's
location and contents and the user's files have tests of their own below."""

OWN_TESTS = {"dataset", "data", "data_dir", "input_size", "source_checkpoint"}

PREREQUISITES = {"curve_budgets": {"training_curves": True}}
"""Fields that act only beside another setting: changed from a base that has it."""


def test_every_field_is_keyed_or_declared_unkeyed():
    names = {f.name for f in dataclasses.fields(BenchConfig)}
    assert names == set(ALTERNATIVES) | OWN_TESTS | set(UNKEYED_FIELDS)


@pytest.mark.parametrize("name", sorted(ALTERNATIVES))
def test_changing_a_field_changes_the_ids_of_the_tasks_that_read_it(name, base_ids):
    base = dataclasses.replace(_base(), **PREREQUISITES.get(name, {}))
    changed = dataclasses.replace(base, **{name: ALTERNATIVES[name]})
    if name in ("mean", "std"):  # they go together
        changed.mean, changed.std = ALTERNATIVES["mean"], ALTERNATIVES["std"]
    assert (_ids(base) if name in PREREQUISITES else base_ids) != _ids(changed)


def test_normalisation_retrains_every_model():
    """The issue's case: the same study with another normalisation shares no task."""
    base = preset("quick")
    normalised = dataclasses.replace(base, mean=[0.5], std=[0.25])
    assert not _ids(base) & _ids(normalised)


def test_unkeyed_device_and_precision_change_no_id(base_ids):
    assert base_ids == _ids(dataclasses.replace(_base(), device="cpu"))
    assert base_ids == _ids(dataclasses.replace(_base(), precision="bfloat16"))


def test_context_reads_are_keyed_by_each_kind_that_declares_them():
    """n_calibration reaches the int8 target of the dense model only through its context."""
    base = preset("quick")
    before = build_graph(base).tasks
    after = build_graph(dataclasses.replace(base, n_calibration=64)).tasks
    names = {t.spec.name for t in after.values() if t.id not in before and hasattr(t.spec, "name")}
    assert "dense+int8" in names
    assert {t.kind for t in after.values() if t.id in before} == {"source", "craft", "sanity"}


def test_the_datas_contents_key_every_task(tmp_path, monkeypatch):
    """A built-in dataset read from another folder holding other files gets new ids; the same
    files elsewhere keep them."""
    original = data_module._LOADERS["digits"]

    def from_folder(root, download):
        (x_train, y_train), test = original(None, download)
        if root is not None and (root / "flip").exists():
            y_train = y_train.clone()
            y_train[0] = (y_train[0] + 1) % 10
        return (x_train, y_train), test

    monkeypatch.setitem(data_module._LOADERS, "digits", from_folder)
    same, other = tmp_path / "same", tmp_path / "other"
    same.mkdir()
    other.mkdir()
    (other / "flip").write_text("")
    base = preset("quick")
    assert _ids(base) == _ids(dataclasses.replace(base, data_dir=str(same)))
    assert not _ids(base) & _ids(dataclasses.replace(base, data_dir=str(other)))


def _npz(path: Path, seed: int) -> str:
    rng = np.random.default_rng(seed)
    x = rng.random((60, 1, 8, 8), dtype=np.float32)
    y = np.arange(60) % 3
    np.savez(path, x_train=x[:40], y_train=y[:40], x_test=x[40:], y_test=y[40:])
    return str(path)


def test_the_users_files_key_every_task(tmp_path):
    config = dataclasses.replace(preset("quick"), data=_npz(tmp_path / "a.npz", 0), defences=[])
    first = _ids(config)
    _npz(tmp_path / "a.npz", 1)  # the same path, other contents
    study_inputs._digest.cache_clear()
    study_inputs._load.cache_clear()
    assert not first & _ids(config)
    assert _ids(config) != _ids(dataclasses.replace(config, input_size=[6, 6]))
    assert _ids(config) != _ids(dataclasses.replace(config, data=None, dataset="digits"))


def test_the_source_checkpoints_contents_key_the_study(tmp_path):
    config = dataclasses.replace(preset("quick"), source_checkpoint=_checkpoint(tmp_path))
    first = _ids(config)
    assert first != _ids(preset("quick"))
    weights = torch.load(config.source_checkpoint, weights_only=True)
    weights["state_dict"] = {k: v + 1 for k, v in weights["state_dict"].items()}
    torch.save(weights, config.source_checkpoint)
    assert not first & _ids(config)


def test_the_users_model_code_keys_every_task(tmp_path, monkeypatch):
    module = tmp_path / "keyed_models.py"
    source = "from gap_art.models.cnn import SmallCNN as Net\n"
    module.write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    config = dataclasses.replace(preset("quick"), arch="keyed_models:Net", defences=[])
    first = _ids(config)
    module.write_text(source + "# another version of the model\n")
    assert not first & _ids(config)


def test_presentation_code_keeps_ids_computing_code_changes_them(tmp_path, monkeypatch):
    copy = tmp_path / "gap_art"
    shutil.copytree(study_inputs.PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))

    def digest_after(edit: str) -> str:
        with open(copy / edit, "a") as handle:
            handle.write("\n# edited\n")
        study_inputs.code_digest.cache_clear()
        return study_inputs.code_digest()

    monkeypatch.setattr(study_inputs, "PACKAGE", copy)
    study_inputs.code_digest.cache_clear()
    try:
        start = study_inputs.code_digest()
        assert digest_after("bench/report.py") == start
        assert digest_after("cli/bench.py") == start
        assert digest_after("pruning/selection.py") != start
    finally:
        study_inputs.code_digest.cache_clear()


def test_library_versions_key_every_task(monkeypatch):
    config = preset("quick")
    first = _ids(config)
    versions = {**study_inputs.library_versions(), "torchattacks": "0.0.1"}
    monkeypatch.setattr(study_inputs, "library_versions", lambda: versions)
    assert not first & _ids(config)


def test_a_task_reading_an_undeclared_field_fails_loudly(tmp_path, monkeypatch):
    config = preset("quick")
    spec = SourceSpec("digits", None, 0, "small-cnn", epochs=1, seed=0)
    task = Task.make(spec, StudyInputs.of(config))

    def peek(self, task, deps, ctx):
        return {"n_test": ctx.config.n_test}

    monkeypatch.setattr(SourceSpec, "run", peek)
    with pytest.raises(UndeclaredReadError, match="n_test"):
        run_task(task, {}, Context(config, Store(tmp_path)))


def test_resuming_another_configuration_names_the_fields(tmp_path):
    store = Store(tmp_path)
    store.prepare()
    store.write_config(preset("quick").to_dict())
    check_same_config(store, dataclasses.replace(preset("quick"), device="cpu"))  # unkeyed
    with pytest.raises(ConfigError, match=r"n_test: None -> 50.*seeds: \[0\] -> \[0, 1\]"):
        check_same_config(store, dataclasses.replace(preset("quick"), n_test=50, seeds=[0, 1]))
    assert store.read_config() == preset("quick").to_dict()  # the folder's study stays as it was


def test_mixing_numerical_environments_is_refused_unless_allowed():
    now = {"device": "cpu", "torch_threads": 2, "cpu_capability": "AVX2", "precision": "float32"}
    before = {**now, "cpu_capability": "AVX512"}
    check_environments([now], now, allow=False)
    with pytest.raises(MixedEnvironmentError, match="cpu_capability: 'AVX512' -> 'AVX2'"):
        check_environments([before, now], now, allow=False)
    check_environments([before, now], now, allow=True)
