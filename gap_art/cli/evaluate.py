"""``gap-art evaluate``: transfer from a user's source model to their targets, under the
attackers they name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from gap_art.cli.options import (
    CommaList,
    RegistryOption,
    arch_option,
    attacks,
    data_dir_option,
    dataset_option,
    device_option,
    seed_option,
    user_errors,
)

EVALUATE_THREATS = ("dense", "independent", "ensemble")
"""Who may craft in ``gap-art evaluate`` (a replica needs the bench, which reruns the method)."""


def _target_model(spec: str, info: Any, arch: str | None, device: str) -> tuple[str, Any]:
    """``NAME=PATH`` as an ART classifier: a checkpoint or state dict (differentiable), or a
    ``.pt2`` program (int8 or not), queried through ``predict`` alone."""
    import numpy as np
    import torch
    from art.estimators.classification import BlackBoxClassifier

    from gap_art.checkpoint import load_model
    from gap_art.classifiers import to_art_classifier
    from gap_art.quantization import load_program

    name, sep, path = spec.partition("=")
    if not sep or not name or not path:
        raise click.BadParameter(f"expected NAME=PATH, got {spec!r}", param_hint="--target")
    if path.endswith(".pt2"):
        program = load_program(path)

        def predict(x: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return program(torch.from_numpy(np.asarray(x, dtype=np.float32))).numpy()

        return name, BlackBoxClassifier(
            predict, tuple(info.input_shape), info.nb_classes, clip_values=info.clip_values
        )
    model, _ = load_model(path, info, arch)
    return name, to_art_classifier(model, info, device=device)


@click.command()
@click.option(
    "--source",
    "source_path",
    type=click.Path(dir_okay=False),
    required=True,
    help="The model the attacker holds (a checkpoint, or a state_dict with --arch).",
)
@click.option(
    "--target",
    "targets",
    multiple=True,
    required=True,
    help="NAME=PATH of a target: a checkpoint, a state_dict (--arch) or a .pt2 program; repeatable.",
)
@dataset_option()
@arch_option("Architecture of plain state_dict files (a registry or torchvision name).")
@data_dir_option()
@click.option(
    "--attacks",
    default="pgd",
    show_default=True,
    cls=RegistryOption,
    names=attacks,
    type=CommaList(str, attacks),
    help="Attacks crafted on the source, comma-separated.",
)
@click.option(
    "--threat-models",
    default="dense",
    show_default=True,
    type=CommaList(str, lambda: list(EVALUATE_THREATS)),
    help="Who crafts, comma-separated: dense (the --source model), independent (--independent, a "
    "model the attacker trained themselves), ensemble (the logit average of both). A replica needs "
    "each target's method: gap-art bench --source-checkpoint runs it.",
)
@click.option(
    "--independent",
    "independent_path",
    type=click.Path(dir_okay=False),
    help="The attacker's own model (checkpoint, or state_dict with --arch) for the independent and "
    "ensemble threat models.",
)
@click.option("--eps", type=float, help="L-inf budget (default: the dataset's).")
@click.option("--n-test", type=int, help="Test examples, a seeded subset (default: the whole test split).")
@seed_option("Seeds the test subset and the attacks' random starts.")
@device_option()
@click.option(
    "--out", type=click.Path(file_okay=False), help="Folder for results.json, results.csv and report.md."
)
def evaluate(
    source_path: str,
    targets: tuple[str, ...],
    dataset: str,
    arch: str | None,
    data_dir: str | None,
    attacks: list[str],
    threat_models: list[str],
    independent_path: str | None,
    eps: float | None,
    n_test: int | None,
    seed: int,
    device: str,
    out: str | None,
) -> None:
    """Craft attacks on a source model and measure how well they transfer to each target.

    \b
    Examples:
      gap-art evaluate --source model.pt --target gap=pruned.pt --target int8=model-int8.pt2 \\
          --dataset fashion-mnist --attacks pgd,cw --eps 0.15 --out runs/mine
      gap-art evaluate --source model.pt --target gap=pruned.pt --threat-models dense,independent,ensemble \\
          --independent theirs.pt --dataset fashion-mnist
    """
    from gap_art.data import load_dataset
    from gap_art.evaluation import evaluate_transfer, format_table, to_csv, to_json
    from gap_art.runtime import write_text
    from gap_art.settings import AttackSpec

    with user_errors():
        data = load_dataset(dataset, data_dir=data_dir, n_test=n_test, seed=seed)
        attackers = _attackers(threat_models, source_path, independent_path, data.info, arch, device)
        named = dict(_target_model(spec, data.info, arch, device) for spec in targets)
        budget = eps if eps is not None else data.info.eps
        specs = [AttackSpec(attack, eps=budget, seed=seed) for attack in attacks]
    x, y = data.numpy("test")
    results = []
    with user_errors():
        for spec in specs:
            for threat, attacker in attackers.items():
                results += evaluate_transfer(
                    attacker, named, x, y, spec, seed=seed, progress=False, source_name=threat
                )
    click.echo(format_table(results))
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        to_json(results, Path(out) / "results.json")
        to_csv(results, Path(out) / "results.csv")
        settings = (
            f"{dataset}, {len(x)} test examples, eps {budget:g} (L-inf), seed {seed}, source {source_path}"
        )
        write_text(
            Path(out) / "report.md", f"# gap-art evaluate\n\n{settings}\n\n{format_table(results, True)}\n"
        )
        click.echo(f"\nwrote {Path(out) / 'results.json'}, results.csv and report.md")


def _attackers(
    threats: list[str],
    source_path: str,
    independent_path: str | None,
    info: Any,
    arch: str | None,
    device: str,
) -> dict[str, Any]:
    """The classifier each requested threat model crafts on (``--threat-models``)."""
    from gap_art.checkpoint import load_model
    from gap_art.classifiers import to_art_classifier
    from gap_art.models.ensemble import EnsembleModule
    from gap_art.validation import check_choices

    if "replica" in threats:
        raise ValueError(
            "threat_models: a replica reruns each target's method on the source; gap-art bench "
            "--source-checkpoint MODEL --threat-models replica runs it for the methods it builds"
        )
    check_choices(threats, "threat_models", EVALUATE_THREATS)
    source = load_model(source_path, info, arch)[0]
    models = {"dense": source}
    if {"independent", "ensemble"} & set(threats):
        if independent_path is None:
            raise ValueError(
                "threat_models independent and ensemble need --independent MODEL (the attacker's own)"
            )
        models["independent"] = load_model(independent_path, info, arch)[0]
        models["ensemble"] = EnsembleModule([source, models["independent"]])
    return {threat: to_art_classifier(models[threat], info, device=device) for threat in threats}
