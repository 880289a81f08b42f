"""What the tasks of one run share: the configuration, the results folder, the data, and the
classifiers already loaded in this process."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import fields
from typing import Any, cast

import numpy as np
import torch
from art.estimators.classification import PyTorchClassifier

from gap_art.bench.config import BenchConfig
from gap_art.bench.inputs import DATA_FIELDS, UNKEYED_FIELDS, study_data
from gap_art.bench.store import Store
from gap_art.bench.task_results import CraftResult
from gap_art.checkpoint import load_checkpoint, save_checkpoint
from gap_art.classifiers import to_art_classifier
from gap_art.data import DataBundle
from gap_art.data.splits import VALIDATION
from gap_art.evaluation.transfer import PREDICT_BATCH_SIZE
from gap_art.models import EnsembleModule, create_model, parse_arch_kwargs
from gap_art.runtime import resolve_device, seeded_subset

CONFIG_FIELDS = frozenset(f.name for f in fields(BenchConfig))


class UndeclaredReadError(AttributeError):
    """A task read a configuration field its kind does not declare (``TaskSpec.reads``), so
    its id would not cover it: a bug in gap-art, never the user's mistake."""


class _Reads:
    """A configuration that lets a task read the data fields (every id covers the data), the
    fields that key no task, and the fields its kind declares; nothing else."""

    def __init__(self, config: BenchConfig, allowed: Iterable[str]) -> None:
        self._config = config
        self._allowed = frozenset(allowed) | set(DATA_FIELDS) | set(UNKEYED_FIELDS)

    def __getattr__(self, name: str) -> Any:
        if name in CONFIG_FIELDS and name not in self._allowed:
            raise UndeclaredReadError(
                f"a task read config.{name} without declaring it in its kind's `reads`: "
                "its cache key would not cover it"
            )
        return getattr(self._config, name)


def evaluation_seed(config: BenchConfig, seed: int) -> int:
    """The seed that draws study seed ``seed``'s test examples."""
    return config.data_seed + seed


class Context:
    """The configuration, the store and the data, shared by the tasks of one run."""

    def __init__(self, config: BenchConfig, store: Store) -> None:
        self.config = config
        self._study = config  # the whole configuration, whatever a bound context may read
        self.store = store
        self.device = resolve_device(config.device)
        self._targets: dict[str, PyTorchClassifier] = {}
        self._classifiers: dict[str, PyTorchClassifier] = {}
        self._whitebox: dict[tuple[Any, ...], np.ndarray] = {}
        self._logits: dict[tuple[int, str], tuple[Any, np.ndarray]] = {}

    def reading(self, allowed: Iterable[str]) -> Context:
        """This context (sharing its loaded models), for a task that may read only the
        configuration fields ``allowed`` (and the data's)."""
        bound = copy.copy(self)
        bound.config = cast(BenchConfig, _Reads(self._study, allowed))
        return bound

    @property
    def data(self) -> DataBundle:
        return study_data(self._study)  # the data's fields key every task: any task may load it

    def evaluation_set(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """The examples attacked in study seed ``seed``: a fresh seeded subset of the held-out
        split per seed (``n_test`` drawn with ``data_seed + seed``; the whole split when
        ``n_test`` is unset), so intervals over seeds include test sampling."""
        x, y = self.data.numpy(self.config.split)
        keep = seeded_subset(len(x), self.config.n_test, evaluation_seed(self.config, seed))
        return x[keep], y[keep]

    def validation_set(self) -> tuple[np.ndarray, np.ndarray]:
        """The study's validation rows: official training rows that no model of the study
        trains on (drawn before anything is trained), never the test split. Every model
        selection (early stopping, budgets, flags) reads these."""
        return self.data.numpy(VALIDATION)

    def calibration_set(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Training examples for GAP's calibration attacks, the baselines and int8."""
        x, y = self.data.numpy("train")
        keep = seeded_subset(len(x), self.config.n_calibration, seed)
        return x[keep], y[keep]

    def classifier(self, checkpoint: str) -> PyTorchClassifier:
        """An ART classifier of a cached checkpoint on the run's device, loaded once per
        process (tasks never modify a classifier they are given: they copy its model)."""
        if checkpoint not in self._classifiers:
            model, info, _ = load_checkpoint(self.store.cache / checkpoint, arch=self.config.arch)
            self._classifiers[checkpoint] = to_art_classifier(model, info, device=self.device)
        return self._classifiers[checkpoint]

    def crafting_classifier(self, checkpoints: list[str]) -> PyTorchClassifier:
        """The model an attacker crafts on: one cached checkpoint, or the logit average of
        several (built once per process, like each member)."""
        if len(checkpoints) == 1:
            return self.classifier(checkpoints[0])
        key = "+".join(checkpoints)
        if key not in self._classifiers:
            ensemble = EnsembleModule([self.classifier(c).model for c in checkpoints])
            self._classifiers[key] = to_art_classifier(ensemble, self.data.info, device=self.device)
        return self._classifiers[key]

    def logits(self, classifier: Any, x: np.ndarray) -> np.ndarray:
        """``classifier``'s logits on ``x``, computed once per process: every cell of a target
        scores the same clean examples, and every target the same attacker's examples. (Tasks
        never modify a classifier, so its logits on the same inputs never change; the memo holds
        the classifier, so no other object can take its id.)"""
        key = (id(classifier), hashlib.sha1(np.ascontiguousarray(x).data).hexdigest() + str(x.shape))
        if key not in self._logits:
            self._logits[key] = (classifier, classifier.predict(x, batch_size=PREDICT_BATCH_SIZE))
        return self._logits[key][1]

    def cached_target(self, task_id: str) -> PyTorchClassifier | None:
        """A target classifier this process already built, if any."""
        return self._targets.get(task_id)

    def keep_target(self, task_id: str, classifier: PyTorchClassifier) -> None:
        self._targets[task_id] = classifier

    def whitebox_examples(self, key: tuple[Any, ...], craft: Callable[[], np.ndarray]) -> np.ndarray:
        """White-box examples crafted on one classifier, made once per process: the int8
        version of a model is attacked through that model, whose own cell crafted them."""
        if key not in self._whitebox:
            self._whitebox[key] = craft()
        return self._whitebox[key]

    def examples(self, craft: CraftResult) -> np.ndarray:
        """The adversarial examples a craft task stored."""
        with np.load(self.store.cache / craft.examples) as stored:
            return stored["x_adv"]

    def save_model(self, task_id: str, model: torch.nn.Module, arch: str | None = None) -> str:
        """Checkpoint a task's model (of ``arch``, the study's by default) in the cache;
        returns the file name."""
        name, arch = f"{task_id}.pt", arch or self.config.arch
        save_checkpoint(
            self.store.cache / name, model, arch, self.data.info, arch_kwargs=self.arch_kwargs(arch)
        )
        return name

    def arch_kwargs(self, arch: str) -> dict[str, Any]:
        """The keyword arguments of ``arch``: the study's ``arch_kwargs`` for its own architecture."""
        return parse_arch_kwargs(self.config.arch_kwargs) if arch == self.config.arch else {}

    def new_model(self, arch: str | None = None) -> torch.nn.Module:
        """An untrained model of ``arch`` (the study's by default) for the study's data."""
        arch = arch or self.config.arch
        info = self.data.info
        return create_model(arch, info.input_shape, info.nb_classes, self.arch_kwargs(arch))
