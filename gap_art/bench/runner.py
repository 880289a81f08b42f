"""What each task of the study does. Every function reads its inputs from the store and
its dependencies' metadata, and returns its own metadata (small, JSON-able), so that any
executor (local or Ray) can run it in any process that sees the results folder."""

from __future__ import annotations

import functools
import time
import traceback
from typing import Any

import numpy as np
import torch
from art.estimators.classification import PyTorchClassifier

from gap_art.bench import art_defences
from gap_art.bench.config import PRUNING_METHODS, BenchConfig
from gap_art.bench.graph import Task
from gap_art.bench.store import Store
from gap_art.checkpoint import load_checkpoint, save_checkpoint
from gap_art.classifiers import is_gradient_free, to_art_classifier
from gap_art.data import DataBundle, load_dataset
from gap_art.defences import GreedyAdversarialPruning, Int8Quantization, IrregularPruning
from gap_art.evaluation import craft_examples, evaluate_transfer, wilson_interval
from gap_art.evaluation.sanity import run_sanity_checks
from gap_art.models import EnsembleModule, create_model
from gap_art.models.registry import model_recipe
from gap_art.pruning import measure_compression, prunable_parameters
from gap_art.quantization import model_size
from gap_art.training import RECIPES, resolve_device, train_model

Meta = dict[str, Any]


@functools.lru_cache(maxsize=4)
def _bundle(dataset: str, data_dir: str | None, n_train: int | None, data_seed: int) -> DataBundle:
    return load_dataset(dataset, data_dir=data_dir, n_train=n_train, seed=data_seed)


class Context:
    """The configuration, the store and the data, shared by the tasks of one run."""

    def __init__(self, config: BenchConfig, store: Store) -> None:
        self.config = config
        self.store = store
        self.device = resolve_device(config.device)
        self._targets: dict[str, PyTorchClassifier] = {}
        self._classifiers: dict[str, PyTorchClassifier] = {}

    @property
    def data(self) -> DataBundle:
        c = self.config
        return _bundle(c.dataset, c.data_dir, c.n_train, c.data_seed)

    def evaluation_set(self) -> tuple[np.ndarray, np.ndarray]:
        """The examples attacked: a seeded subset of the held-out split (``n_test``)."""
        x, y = self.data.numpy(self.config.split)
        if self.config.n_test is None or self.config.n_test >= len(x):
            return x, y
        rng = np.random.default_rng(self.config.data_seed)
        keep = np.sort(rng.choice(len(x), size=self.config.n_test, replace=False))
        return x[keep], y[keep]

    def calibration_set(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Training examples for GAP's calibration attacks, the baselines and int8."""
        x, y = self.data.numpy("train")
        n = min(self.config.n_calibration, len(x))
        keep = np.sort(np.random.default_rng(seed).choice(len(x), size=n, replace=False))
        return x[keep], y[keep]

    def classifier(self, checkpoint: str) -> PyTorchClassifier:
        """An ART classifier of a cached checkpoint on the run's device, loaded once per
        process (tasks never modify a classifier they are given: they copy its model)."""
        if checkpoint not in self._classifiers:
            model, info, _ = load_checkpoint(self.store.cache / checkpoint)
            self._classifiers[checkpoint] = to_art_classifier(model, info, device=self.device)
        return self._classifiers[checkpoint]

    def target(self, task_id: str, meta: Meta, seed: int) -> PyTorchClassifier:
        """The target classifier of a finished target task, built once per process."""
        if task_id not in self._targets:
            self._targets[task_id] = load_target(meta, seed, self)
        return self._targets[task_id]

    def examples(self, craft_meta: Meta) -> np.ndarray:
        """The adversarial examples a craft task stored."""
        with np.load(self.store.cache / craft_meta["examples"]) as stored:
            return stored["x_adv"]

    def keep_target(self, task_id: str, classifier: PyTorchClassifier) -> None:
        self._targets[task_id] = classifier

    def save_model(self, task: Task, model: torch.nn.Module) -> str:
        name = f"{task.id}.pt"
        save_checkpoint(self.store.cache / name, model, self.config.model, self.data.info)
        return name


def run_task(task: Task, deps: dict[str, Meta], ctx: Context) -> Meta:
    """Run one task and return its metadata; target and cell failures are recorded, not raised."""
    runners = {"source": _source, "target": _target, "craft": _craft, "cell": _cell, "sanity": _sanity}
    runner = runners[task.kind]
    if task.kind in ("target", "cell", "sanity"):
        failed = next((m for m in deps.values() if m.get("error")), None)
        if failed is not None:
            return {"error": failed["error"]}
        try:
            return runner(task, deps, ctx)
        except Exception as error:  # a crash in one target or cell must not stop the study
            return {
                "error": f"{type(error).__name__}: {error}",
                "traceback": traceback.format_exc(),
            }
    return runner(task, deps, ctx)


def _size_fields(model: torch.nn.Module, int8: bool) -> Meta:
    size = model_size(model)
    report = measure_compression(model, prunable_parameters(model))
    sparse = size.sparse_int8_bytes if int8 else size.sparse_float32_bytes
    dense = size.int8_bytes if int8 else size.float32_bytes
    encoding = ("int8" if int8 else "float32") + ("+bitmap" if sparse < dense else "")
    return {
        "compression": report.compression,
        "sparsity": report.sparsity,
        "size_bytes": min(sparse, dense),
        "size_encoding": encoding,
        "float32_bytes": size.float32_bytes,
    }


def _source(task: Task, deps: dict[str, Meta], ctx: Context) -> Meta:
    spec = task.spec
    torch.manual_seed(spec["seed"])
    info = ctx.data.info
    model = create_model(spec["model"], info.input_shape, info.nb_classes)
    start = time.perf_counter()
    recipe = RECIPES[model_recipe(spec["model"])]
    train_model(model, ctx.data.train, spec["epochs"], recipe, spec["seed"], ctx.device, False)
    elapsed = time.perf_counter() - start
    return {
        "checkpoint": ctx.save_model(task, model),
        "time_s": elapsed,
        **_size_fields(model, False),
    }


def _target(task: Task, deps: dict[str, Meta], ctx: Context) -> Meta:
    spec = task.spec
    source = deps[task.deps[0]]
    if spec["family"] == "baseline":
        return {key: source[key] for key in source if key != "traceback"}
    start = time.perf_counter()
    if spec["family"] == "pruning":
        curve_examples = deps[task.deps[1]] if len(task.deps) > 1 else None
        model, curve = _prune(spec, ctx.classifier(source["checkpoint"]), curve_examples, ctx)
        meta = {"checkpoint": ctx.save_model(task, model), **_size_fields(model, False)}
        if curve:
            meta["finetune_curve"] = curve
    elif spec["family"] == "quantization":
        parent = deps[task.deps[1]]
        float_classifier = ctx.classifier(parent["checkpoint"])
        # built here to time it and prove it works; kept in memory, rebuilt in a new process
        ctx.keep_target(task.id, _quantize(float_classifier, spec["seed"], ctx))
        meta = {
            "parent_checkpoint": parent["checkpoint"],
            **_size_fields(float_classifier.model, True),
        }
    elif spec["method"] in art_defences.PREPROCESSORS:
        meta = {"checkpoint": source["checkpoint"], "preprocessor": spec["method"]}
        meta.update({k: source[k] for k in ("compression", "sparsity", "size_bytes", "size_encoding")})
    else:
        model = _train_defence(spec, ctx.classifier(source["checkpoint"]), ctx)
        meta = {"checkpoint": ctx.save_model(task, model), **_size_fields(model, False)}
    meta["time_s"] = time.perf_counter() - start
    return meta


def _prune(
    spec: Meta, classifier: PyTorchClassifier, curve_examples: Meta | None, ctx: Context
) -> tuple[torch.nn.Module, list[list[float]]]:
    """Prune and fine-tune; with ``curve_examples`` (a craft task's output), also record
    ``[epoch, clean accuracy, transfer accuracy]`` before and after each fine-tuning epoch."""
    kind, method = PRUNING_METHODS[spec["method"]]
    optimizer = RECIPES[model_recipe(ctx.config.model)].optimizer
    common = {
        "compression": spec["requested_compression"],
        "finetune_epochs": spec["finetune_epochs"],
        "finetune_optimizer": optimizer,
        "nb_calibration": spec["n_calibration"],
        "seed": spec["seed"],
    }
    defence: GreedyAdversarialPruning | IrregularPruning
    if kind == "gap":
        eps = spec["gap_eps"]
        steps = {"eps": eps, "eps_step": eps / 4} if eps is not None else {}  # else GAP's default
        defence = GreedyAdversarialPruning(classifier, criterion=method, max_iter=10, **steps, **common)
    else:
        defence = IrregularPruning(classifier, method=method, **common)
    curve: list[list[float]] = []
    if curve_examples is not None:
        x, y = ctx.evaluation_set()
        x_adv = ctx.examples(curve_examples)

        both, labels = np.concatenate([x, x_adv]), np.concatenate([y, y])

        def record(epoch: int, pruned: PyTorchClassifier) -> None:
            correct = pruned.predict(both, batch_size=1024).argmax(1) == labels
            curve.append([epoch, float(correct[: len(x)].mean()), float(correct[len(x) :].mean())])

        defence.finetune_monitor = record
    x_cal, y_cal = ctx.calibration_set(spec["seed"])
    defence.fit(x_cal, y_cal)
    x_train, y_train = ctx.data.numpy("train")
    return defence(x_train, y=y_train).model, curve


def _quantize(classifier: PyTorchClassifier, seed: int, ctx: Context) -> PyTorchClassifier:
    x_cal, _ = ctx.calibration_set(seed)
    return Int8Quantization(classifier, nb_calibration=None, seed=seed)(x_cal)


def _train_defence(spec: Meta, source: PyTorchClassifier, ctx: Context) -> torch.nn.Module:
    """Train one of ART's trained defences (distillation trains a student for ``epochs``)."""
    info = ctx.data.info
    torch.manual_seed(spec["seed"])
    student = create_model(ctx.config.model, info.input_shape, info.nb_classes)
    x, y = ctx.data.numpy("train")
    return art_defences.train_defence(
        spec["method"], source, student, x, y, spec["epochs"], spec.get("eps", 0.0), spec["seed"]
    )


def crafting_classifier(source_metas: list[Meta], ctx: Context) -> PyTorchClassifier:
    """The model the attacker crafts on: one model, or the logit average of several."""
    classifiers = [ctx.classifier(m["checkpoint"]) for m in source_metas]
    if len(classifiers) == 1:
        return classifiers[0]
    ensemble = EnsembleModule([c.model for c in classifiers])
    return to_art_classifier(ensemble, ctx.data.info, device=ctx.device)


def _craft(task: Task, deps: dict[str, Meta], ctx: Context) -> Meta:
    spec = task.spec
    failed = next((m for m in deps.values() if m.get("error")), None)
    if failed is not None:  # an attacker model failed to build: no examples, cells record why
        return {"error": failed["error"]}
    source = crafting_classifier([deps[d] for d in task.deps], ctx)
    x, y = ctx.evaluation_set()
    start = time.perf_counter()
    x_adv = craft_examples(
        source,
        x,
        y,
        spec["attack"],
        backend=spec["backend"],
        eps=spec["eps"],
        eps_step=spec["eps"] / 4,
        seed=spec["seed"],
    )
    name = f"{task.id}.npz"
    path = ctx.store.cache / name
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, x_adv=x_adv)
    tmp.replace(path)
    return {
        "examples": name,
        "sources": [deps[d]["checkpoint"] for d in task.deps],
        "time_s": time.perf_counter() - start,
        "n": len(x),
    }


def load_target(meta: Meta, seed: int, ctx: Context) -> PyTorchClassifier:
    """Rebuild a target classifier from its cached metadata."""
    if "parent_checkpoint" in meta:
        return _quantize(ctx.classifier(meta["parent_checkpoint"]), seed, ctx)
    classifier = ctx.classifier(meta["checkpoint"])
    if "preprocessor" in meta:
        return art_defences.with_preprocessor(classifier, meta["preprocessor"])
    return classifier


def _cell(task: Task, deps: dict[str, Meta], ctx: Context) -> Meta:
    spec = task.spec
    target_meta, craft_meta = (deps[d] for d in task.deps)
    source = crafting_classifier([{"checkpoint": c} for c in craft_meta["sources"]], ctx)
    target = ctx.target(task.deps[0], target_meta, spec["seed"])
    x, y = ctx.evaluation_set()
    x_adv = ctx.examples(craft_meta)
    (result,) = evaluate_transfer(
        source,
        {spec["target"]: target},
        x,
        y,
        spec["attack"],
        x_adv=x_adv,
        progress=False,
        seed=spec["seed"],
        source_name=spec["threat_model"],
    )
    row = result.to_dict()
    correct = target.predict(x_adv).argmax(1) == y
    row["transfer_correct"] = np.packbits(correct).tobytes().hex()  # for the worst case per example
    row.update(_whitebox(target, x, y, spec, ctx))
    return row


def _whitebox(target: PyTorchClassifier, x: np.ndarray, y: np.ndarray, spec: Meta, ctx: Context) -> Meta:
    """White-box accuracy: attacked through its own gradients, or, for an int8 target,
    through its float parent (``surrogate``) and transferred; ``None`` where not asked."""
    if not spec["whitebox"]:
        return {"whitebox_accuracy": None, "whitebox_mode": None}
    attacked, mode = target, "direct"
    if is_gradient_free(target):
        attacked, mode = target.surrogate, "surrogate"
    # ART's numpy preprocessors are only differentiable through ART's own estimates (BPDA)
    backend = ctx.config.attack_backend if attacked.all_framework_preprocessing else "art"
    eps = spec["eps"]
    x_adv = craft_examples(
        attacked, x, y, spec["attack"], backend=backend, eps=eps, eps_step=eps / 4, seed=spec["seed"]
    )
    correct = target.predict(x_adv).argmax(1) == y
    low, high = wilson_interval(int(correct.sum()), len(correct))
    return {
        "whitebox_accuracy": float(correct.mean()),
        "whitebox_accuracy_ci_low": low,
        "whitebox_accuracy_ci_high": high,
        "whitebox_mode": f"{mode} ({backend})",
    }


def _sanity(task: Task, deps: dict[str, Meta], ctx: Context) -> Meta:
    spec = task.spec
    source = ctx.classifier(deps[task.deps[0]]["checkpoint"])
    x, y = ctx.evaluation_set()
    checks = run_sanity_checks(
        source, x, y, spec["eps"], spec["attacks"], backend=spec["backend"], seed=spec["seed"]
    )
    return {"seed": spec["seed"], "checks": [c.to_dict() for c in checks]}


ROW_FIELDS = (
    "target",
    "family",
    "method",
    "requested_compression",
    "compression",
    "sparsity",
    "size_bytes",
    "size_encoding",
    "seed",
    "attack",
    "eps",
    "threat_model",
    "clean_accuracy",
    "transfer_accuracy",
    "whitebox_accuracy",
    "whitebox_mode",
    "worst_case_transfer_accuracy",
    "transfer_success_rate",
    "both_correct",
    "n",
    "trustworthy",
    "sanity_failures",
    "time_s",
    "error",
)
"""The leading columns of every row; the metrics' intervals and extras follow."""


def compose_row(cell: Task, target: Task, target_meta: Meta, cell_meta: Meta) -> Meta:
    """One results row: the target's identity and cost, then the cell's metrics."""
    row: Meta = {name: None for name in ROW_FIELDS}
    row.update(
        cell_id=cell.id,
        target=target.spec["name"],
        family=target.spec["family"],
        method=target.spec["method"],
        requested_compression=target.spec.get("requested_compression", 1.0),
        seed=cell.spec["seed"],
        attack=cell.spec["attack"],
        eps=cell.spec["eps"],
        threat_model=cell.spec["threat_model"],
    )
    for key in ("compression", "sparsity", "size_bytes", "size_encoding", "time_s", "finetune_curve"):
        if key in target_meta:
            row[key] = target_meta[key]
    row.update({k: v for k, v in cell_meta.items() if k not in ("target", "attack", "seed", "traceback")})
    return row
