"""Shared fixtures: the digits data and one small CNN trained on it once per session."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from gap_art.classifiers import to_art_classifier
from gap_art.data import DataBundle, load_dataset
from gap_art.models import create_model
from gap_art.training import RECIPES, train_model


@pytest.fixture(scope="session")
def digits() -> DataBundle:
    return load_dataset("digits")


@pytest.fixture(scope="session")
def trained_state(digits: DataBundle) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    model = create_model("small-cnn", digits.info.input_shape, digits.info.nb_classes)
    train_model(model, digits.train, 30, RECIPES["adam"], seed=0, device="cpu", progress=False)
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.fixture
def digits_model(digits: DataBundle, trained_state: dict[str, torch.Tensor]) -> torch.nn.Module:
    """A fresh copy of the trained digits CNN, free to modify."""
    model = create_model("small-cnn", digits.info.input_shape, digits.info.nb_classes)
    model.load_state_dict(trained_state)
    return model.eval()


@pytest.fixture
def classifier(digits: DataBundle, digits_model: torch.nn.Module):
    """An ART classifier of the trained digits CNN (CPU)."""
    return to_art_classifier(digits_model, digits.info, device="cpu")


@pytest.fixture
def break_cell(monkeypatch: pytest.MonkeyPatch):
    """``break_cell(target)`` makes every bench cell of ``target`` raise, as a crash in the middle
    of a study would."""
    from gap_art.bench.tasks import CellSpec

    original = CellSpec.run

    def breaker(target: str) -> None:
        def broken(self, task, deps, ctx):
            if self.target == target:
                raise RuntimeError("boom")
            return original(self, task, deps, ctx)

        monkeypatch.setattr(CellSpec, "run", broken)

    return breaker


def small_config(**changes):
    """The quick preset at a reduced size: the same study, fewer cells."""
    from gap_art.bench import preset

    base = replace(
        preset("quick"),
        methods=["gap-grad", "magnitude"],
        compression=[4.0],
        attacks=["fgsm", "pgd"],
        defences=["feature-squeezing", "fbf"],
        n_test=200,
        defence_epochs=1,
    )
    return replace(base, **changes)


@pytest.fixture(scope="session")
def small_study(tmp_path_factory):
    """:func:`small_config`'s study, run once per session."""
    from gap_art.bench import run

    return run(small_config(), out=tmp_path_factory.mktemp("small-study"), progress=False)


@pytest.fixture
def warm(small_study):
    """``warm(folder)`` puts the small study's cached models and examples into ``folder``'s
    cache and returns ``folder``: task ids hash everything a task's result depends on, so a
    study run there reuses exactly the tasks it shares with the small study (the dense source,
    the pruned models, ART's trainers of the same settings) and computes the rest."""

    def into(folder: Path) -> Path:
        shutil.copytree(small_study.out / "cache", folder / "cache", dirs_exist_ok=True)
        return folder

    return into
