"""What each task of the study does. Every function reads its inputs from the store and its
dependencies' metadata, and returns its own metadata (small, JSON-able), so that any executor
(local or Ray) can run it in any process that sees the results folder."""

from __future__ import annotations

import time
import traceback

import numpy as np
import torch
from art.estimators.classification import PyTorchClassifier

from gap_art.attacks import default_eps_step
from gap_art.bench.context import Context, Meta
from gap_art.bench.rows import pack_correct
from gap_art.bench.targets import KINDS, size_fields, spec_from_dict
from gap_art.bench.tasks import Task
from gap_art.checkpoint import load_model
from gap_art.classifiers import is_gradient_free, to_art_classifier
from gap_art.evaluation import craft_examples, evaluate_transfer, evaluate_whitebox
from gap_art.evaluation.sanity import run_sanity_checks
from gap_art.models import EnsembleModule, create_model
from gap_art.models.registry import model_recipe
from gap_art.runtime import atomic_write
from gap_art.training import RECIPES, train_model


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
            return {"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()}
    return runner(task, deps, ctx)


def _source(task: Task, deps: dict[str, Meta], ctx: Context) -> Meta:
    spec = task.spec
    info = ctx.data.info
    if "checkpoint" in spec:  # the user's trained model
        model, _ = load_model(spec["checkpoint"], info, spec["model"])
        return {"checkpoint": ctx.save_model(task.id, model), "time_s": 0.0, **size_fields(model, False)}
    torch.manual_seed(spec["seed"])
    model = create_model(spec["model"], info.input_shape, info.nb_classes)
    start = time.perf_counter()
    recipe = RECIPES[model_recipe(spec["model"])]
    train_model(model, ctx.data.train, spec["epochs"], recipe, spec["seed"], ctx.device, False)
    elapsed = time.perf_counter() - start
    return {"checkpoint": ctx.save_model(task.id, model), "time_s": elapsed, **size_fields(model, False)}


def _target(task: Task, deps: dict[str, Meta], ctx: Context) -> Meta:
    spec = spec_from_dict(task.spec)
    start = time.perf_counter()
    meta = KINDS[spec.kind].build(task.id, spec, [deps[d] for d in task.deps], ctx)
    meta.setdefault("time_s", time.perf_counter() - start)
    meta["spec"] = task.spec  # how to load it again, in any process
    return meta


def load_target(task_id: str, meta: Meta, ctx: Context) -> PyTorchClassifier:
    """The classifier of a finished target task, built once per process."""
    cached = ctx.cached_target(task_id)
    if cached is None:
        spec = spec_from_dict(meta["spec"])
        cached = KINDS[spec.kind].load(meta, spec, ctx)
        ctx.keep_target(task_id, cached)
    return cached


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
        eps_step=default_eps_step(spec["eps"]),
        seed=spec["seed"],
    )
    name = f"{task.id}.npz"
    atomic_write(ctx.store.cache / name, lambda tmp: np.savez_compressed(tmp, x_adv=x_adv))
    return {
        "examples": name,
        "sources": [deps[d]["checkpoint"] for d in task.deps],
        "time_s": time.perf_counter() - start,
        "n": len(x),
    }


def _cell(task: Task, deps: dict[str, Meta], ctx: Context) -> Meta:
    spec = task.spec
    target_meta, craft_meta = (deps[d] for d in task.deps)
    source = crafting_classifier([{"checkpoint": c} for c in craft_meta["sources"]], ctx)
    target = load_target(task.deps[0], target_meta, ctx)
    x, y = ctx.evaluation_set()
    (result,) = evaluate_transfer(
        source,
        {spec["target"]: target},
        x,
        y,
        spec["attack"],
        x_adv=ctx.examples(craft_meta),
        progress=False,
        seed=spec["seed"],
        source_name=spec["threat_model"],
    )
    row = result.to_dict()
    row["transfer_correct"] = pack_correct(result.per_example["transfer"])  # worst case per example
    row.update(_whitebox(target, x, y, spec, ctx))
    return row


def _whitebox(target: PyTorchClassifier, x: np.ndarray, y: np.ndarray, spec: Meta, ctx: Context) -> Meta:
    """White-box accuracy: attacked through its own gradients, or, for an int8 target,
    through its float parent (``surrogate``) and transferred; ``None`` where not asked."""
    if not spec["whitebox"]:
        return {"whitebox_accuracy": None, "whitebox_mode": None}
    attacked = target.surrogate if is_gradient_free(target) else target
    # ART's numpy preprocessors are only differentiable through ART's own estimates (BPDA)
    backend = ctx.config.attack_backend if attacked.all_framework_preprocessing else "art"
    settings = {"backend": backend, "eps": spec["eps"], "eps_step": default_eps_step(spec["eps"])}
    key = (id(attacked), spec["attack"], spec["eps"], spec["seed"], backend)
    x_adv = ctx.whitebox_examples(  # an int8 target reuses the examples crafted on its float parent
        key, lambda: craft_examples(attacked, x, y, spec["attack"], seed=spec["seed"], **settings)
    )
    if attacked is target:
        result = evaluate_whitebox(
            target, x, y, spec["attack"], progress=False, seed=spec["seed"], x_adv=x_adv
        )
        accuracy, mode = result.adversarial_accuracy, "direct"
        low, high = result.intervals["adversarial_accuracy"]
    else:
        (transfer,) = evaluate_transfer(
            attacked, {"int8": target}, x, y, spec["attack"], x_adv=x_adv, progress=False
        )
        accuracy, mode = transfer.transfer_accuracy, "surrogate"
        low, high = transfer.intervals["transfer_accuracy"]
    return {
        "whitebox_accuracy": accuracy,
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
