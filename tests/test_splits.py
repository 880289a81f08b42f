"""Three disjoint splits (METHOD.md, "Comparing methods fairly"): *train*, which every model
of a study trains on; *validation*, drawn from the official training rows before anything is
trained and never trained on; *test*. Checked for every kind of data, and for a whole study
by instrumenting every place a model is trained."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_data import _write_idx
from test_own_model import _image_tree

from gap_art.bench import BenchConfig, run
from gap_art.bench.inputs import study_data
from gap_art.data import DataSpec, load_dataset
from gap_art.data.splits import TEST, TRAIN, VALIDATION, SplitRecord, training_rows


@settings(max_examples=60, deadline=None)
@given(
    n_rows=st.integers(2, 400),
    n_train=st.one_of(st.none(), st.integers(1, 400)),
    fraction=st.floats(0.01, 0.5),
    seed=st.integers(0, 2**31),
)
def test_train_and_validation_rows_never_meet(n_rows, n_train, fraction, seed):
    try:
        train, validation = training_rows(n_rows, n_train, fraction, seed)
    except ValueError as error:  # asked for more rows than there are: says which and how many
        assert "n_train must be between 1 and" in str(error)
        return
    assert set(train.tolist()).isdisjoint(validation.tolist())
    assert len(validation) == max(1, round(fraction * (n_rows if n_train is None else n_train)))
    assert len(train) == (n_rows - len(validation) if n_train is None else n_train)
    assert np.array_equal(train, np.sort(train)) and train.max() < n_rows and validation.max() < n_rows
    again = training_rows(n_rows, n_train, fraction, seed)
    assert np.array_equal(again[0], train) and np.array_equal(again[1], validation)


def _npz(path: Path) -> Path:
    rng = np.random.default_rng(0)
    x = rng.random((90, 1, 8, 8), dtype=np.float32)
    y = np.arange(90) % 3
    np.savez(path, x_train=x[:70], y_train=y[:70], x_test=x[70:], y_test=y[70:])
    return path


def _kinds(tmp_path: Path) -> dict[str, DataSpec]:
    _write_idx(tmp_path / "fashion", 40)
    return {
        "digits": DataSpec("digits"),
        "fashion-mnist": DataSpec("fashion-mnist", data_dir=str(tmp_path / "fashion")),
        "npz": DataSpec(path=str(_npz(tmp_path / "data.npz"))),
        "image-folder": DataSpec(path=str(_image_tree(tmp_path / "tree", "L", n=12))),
    }


@pytest.mark.parametrize("kind", ["digits", "fashion-mnist", "npz", "image-folder"])
def test_every_kind_of_data_gives_three_disjoint_recorded_splits(tmp_path, kind):
    spec = _kinds(tmp_path)[kind]
    whole = spec.load()  # the official splits, every row in order
    n_rows = len(whole.train)
    bundle = spec.load(n_train=n_rows // 2, n_test=5, seed=3, validation_fraction=0.2)
    train, validation = training_rows(n_rows, n_rows // 2, 0.2, 3)
    assert set(train.tolist()).isdisjoint(validation.tolist())
    x_all = whole.train.tensors[0]
    assert torch.equal(bundle.train.tensors[0], x_all[train])  # the rows are the recorded ones
    assert bundle.validation is not None and torch.equal(bundle.validation.tensors[0], x_all[validation])
    assert bundle.splits[TRAIN] == SplitRecord.of(TRAIN, TRAIN, train, 3)
    assert bundle.splits[VALIDATION] == SplitRecord.of(VALIDATION, TRAIN, validation, 3)
    assert bundle.splits[TEST].source == TEST and bundle.splits[TEST].size == len(bundle.test) == 5
    x_val, _ = bundle.numpy(VALIDATION)
    assert x_val.shape == (len(validation), *bundle.info.input_shape)


def test_data_without_a_validation_split_says_how_to_get_one():
    bundle = load_dataset("digits", n_train=100)
    assert bundle.validation is None and VALIDATION not in bundle.splits
    with pytest.raises(ValueError, match="validation_fraction"):
        bundle.numpy(VALIDATION)
    with pytest.raises(ValueError, match=r"n_train must be between 1 and 1217 .* 130 validation rows"):
        load_dataset("digits", n_train=1300, validation_fraction=0.1)


def _fingerprints(x: np.ndarray | torch.Tensor) -> set[str]:
    rows = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    return {hashlib.sha1(row.tobytes()).hexdigest() for row in rows}


def test_no_model_of_a_study_trains_on_a_validation_or_test_row(tmp_path, monkeypatch):
    """Every entry point that trains (gap-art's training loop, the hardenings, ART's trainers
    and classifiers) is instrumented; across a study with every kind of model (dense parent,
    independent and robust attackers, replicas, pool, fine-tuning, hardenings, ART trainers),
    none receives a row of the validation or test split that is not also a train row (the
    adversarial examples they also train on are rows of neither), and every early stopping
    scores the study's validation split."""
    import art.estimators.classification as art_classifiers

    import gap_art.training as training
    from gap_art.defences.art_builtin import TrainedDefence
    from gap_art.defences.hardening import TransferHardening

    seen: list[np.ndarray] = []
    original_train_model = training.train_model

    def train_model(model, data, *args, **kwargs):
        x = data.tensors[0]
        seen.append((x[:, 0] if x.dim() == 5 else x).numpy())  # a pool's stack: the clean rows first
        return original_train_model(model, data, *args, **kwargs)

    for module in ("gap_art.training", "gap_art.bench.tasks", "gap_art.defences.finetune",
                   "gap_art.defences.pool", "gap_art.defences.misalignment"):  # fmt: skip
        monkeypatch.setattr(f"{module}.train_model", train_model)
    harden, defend = TransferHardening.__call__, TrainedDefence.train
    fit = art_classifiers.PyTorchClassifier.fit

    def harden_call(self, x, *args, **kwargs):
        seen.append(x)
        return harden(self, x, *args, **kwargs)

    def defend_train(self, source, data):
        seen.append(data.x)
        return defend(self, source, data)

    def classifier_fit(self, x, *args, **kwargs):
        seen.append(x)
        return fit(self, x, *args, **kwargs)

    stopping: list[bool] = []  # per early stopping: did it score the study's validation rows?
    original_convergence = training.train_to_convergence

    def train_to_convergence(model, x, y, spec, train, score, keep_start=True, validation=None):
        if spec.patience is not None:
            stopping.append(validation is not None)
        return original_convergence(model, x, y, spec, train, score, keep_start, validation)

    for module in ("gap_art.defences.finetune", "gap_art.defences.hardening", "gap_art.defences.art_builtin"):
        monkeypatch.setattr(f"{module}.train_to_convergence", train_to_convergence)
    monkeypatch.setattr(TransferHardening, "__call__", harden_call)
    monkeypatch.setattr(TrainedDefence, "train", defend_train)
    monkeypatch.setattr(art_classifiers.PyTorchClassifier, "fit", classifier_fit)

    config = BenchConfig(
        methods=["gap-grad", "magnitude+tat", "magnitude+pool"], compression=[4.0], attacks=["fgsm"],
        defences=["ensemble-adv"], int8=False, n_train=400, n_test=60, epochs=2,
        finetune_epochs=2, finetune_patience=1, defence_epochs=2, sanity_checks=False,
        threat_models=["dense", "independent", "robust"],
    )  # fmt: skip
    results = run(config, out=tmp_path, progress=False)
    assert not [r for r in results.rows if r.get("error")]
    data = study_data(config)
    train = _fingerprints(data.train.tensors[0])
    assert data.validation is not None
    validation, test = data.validation.tensors[0], load_dataset("digits").test.tensors[0]
    held = (_fingerprints(validation) | _fingerprints(test)) - train  # digits repeats a few images
    assert len(seen) >= 10 and held
    received = set().union(*(_fingerprints(x) for x in seen))
    assert train <= received  # the instruments saw the training (adversarial examples besides)
    assert not received & held
    assert len(stopping) >= 5 and all(stopping)  # every early stopping read the validation split
    recorded = results.out / "results.json"
    splits = json.loads(recorded.read_text())["data_splits"]
    assert {s["name"] for s in splits.values()} == {TRAIN, VALIDATION, TEST}
    assert splits[VALIDATION]["size"] == len(data.validation) == round(0.1 * 400)


def test_the_validation_split_keys_the_study_and_the_test_sample_does_not_key_selection():
    from gap_art.bench.study import build_graph

    base = BenchConfig(methods=["magnitude"], compression=[4.0], attacks=["fgsm"], defences=[], int8=False)
    targets = {t.id for t in build_graph(base).tasks.values() if t.kind == "target"}
    more_tests = {t.id for t in build_graph(replace(base, n_test=77)).tasks.values() if t.kind == "target"}
    assert targets == more_tests  # selection reads validation rows only: the test sample is not its input
    other = {t.id for t in build_graph(replace(base, validation_fraction=0.2)).tasks.values()}
    assert not targets & other


def test_transformers_stop_early_on_the_validation_data_they_are_given(classifier, digits):
    """``validation_data=(x_val, y_val)`` (ART trainers' convention): fine-tuning trains on all
    of ``x`` and early stopping scores exactly those rows; bad ones are refused by name."""
    from gap_art.defences import IrregularPruning, TransferAdversarialFinetuning
    from gap_art.training import evaluate_accuracy

    x, y = digits.numpy("train")
    x_val, y_val = digits.numpy("test")[0][:150], digits.numpy("test")[1][:150]
    pruning = IrregularPruning(classifier, compression=8.0, criterion="random", finetune_epochs=6,
                               finetune_patience=2)  # fmt: skip
    pruned = pruning(x, y=y, validation_data=(x_val, y_val))
    record = pruning.finetune_record_
    assert record is not None and record.validation_accuracy[record.best_epoch] == max(
        record.validation_accuracy
    )
    held = torch.utils.data.TensorDataset(torch.from_numpy(x_val), torch.from_numpy(y_val))
    kept = evaluate_accuracy(pruned.model, held)  # the kept epoch's score is on the rows given
    assert record.validation_accuracy[record.best_epoch] == pytest.approx(kept)
    hardening = TransferAdversarialFinetuning(pruned, classifier, epochs=2, patience=1, max_iter=2)
    hardening(x[:200], y=y[:200], validation_data=(x_val, y_val))
    assert hardening.finetune_record_ is not None and hardening.finetune_record_.validation_accuracy
    bad_inputs = [
        ((x_val,), "validation_data must be a pair"),
        ((x_val, y_val[:3]), r"validation_data\[1\]"),
        ((x_val[:, :, :4], y_val), r"validation_data\[0\] must have shape"),
    ]
    for bad, match in bad_inputs:
        with pytest.raises(ValueError, match=match):
            pruning(x, y=y, validation_data=bad)
