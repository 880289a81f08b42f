"""``gap-art evaluate``: transfer from a user's source model to their targets, under the
attackers they name."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import click

from gap_art.cli.inputs import ARCH_HELP, arch_option, data_options, model_data, user_model
from gap_art.cli.options import CommaList, RegistryOption, attacks, device_option, seed_option, user_errors
from gap_art.errors import ParameterError

EVALUATE_THREATS = ("dense", "independent", "ensemble")
"""Who may craft in ``gap-art evaluate`` (a replica needs the bench, which reruns the method)."""


def _target(spec: str, info: Any, arch: str | None, arch_kwargs: str | None, device: str) -> tuple[str, Any]:
    """``NAME=PATH`` as a :class:`~gap_art.bench.evaluate.UserTarget`: a checkpoint or state dict
    (differentiable), or a ``.pt2`` program (int8 or not), queried through ``predict`` alone."""
    from gap_art.bench.evaluate import UserTarget
    from gap_art.classifiers import program_classifier, to_art_classifier

    name, sep, path = spec.partition("=")
    if not sep or not name or not path:
        raise click.BadParameter(f"expected NAME=PATH, got {spec!r}", param_hint="--target")
    if name == "dense":
        raise click.BadParameter("'dense' names the source itself: pick another NAME", param_hint="--target")
    if path.endswith(".pt2"):
        return name, UserTarget(program_classifier(path, info), None, "quantization")
    model, _ = user_model(path, info, arch, arch_kwargs)
    return name, UserTarget(to_art_classifier(model, info, device=device), model)


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
@data_options("The data to attack (its test split).", model="the --source checkpoint")
@arch_option(ARCH_HELP)
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
@click.option(
    "--n-test", type=click.IntRange(min=1), help="Test examples, a seeded subset (default: the whole split)."
)
@seed_option("Seeds the test subset and the attacks' random starts.")
@device_option()
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="Folder for results.json (the bench's schema: gap-art report and compare read it), results.csv "
    "and report.md.",
)
def evaluate(
    source_path: str,
    targets: tuple[str, ...],
    data_spec: Any,
    arch: str | None,
    arch_kwargs: str | None,
    attacks: list[str],
    threat_models: list[str],
    independent_path: str | None,
    eps: float | None,
    n_test: int | None,
    seed: int,
    device: str,
    quiet: bool,
    out: str | None,
) -> None:
    """Craft attacks on a source model and measure how well they transfer to each target (and,
    as the row 'dense', to the source itself).

    \b
    Examples:
      gap-art evaluate --source model.pt --target gap=pruned.pt --target int8=model-int8.pt2 \\
          --attacks pgd,cw --eps 0.15 --n-test 500 --out runs/mine
      gap-art evaluate --source model.pt --target gap=pruned.pt --threat-models dense,independent,ensemble \\
          --independent theirs.pt
      gap-art report runs/mine
    """
    from tqdm.auto import tqdm

    from gap_art.bench.evaluate import SOURCE_TARGET, UserTarget, evaluate_rows, rows_table, write_evaluation
    from gap_art.classifiers import to_art_classifier
    from gap_art.settings import AttackSpec

    models = (arch, arch_kwargs, device)
    with user_errors():
        data = model_data(data_spec, source_path, n_test=n_test, seed=seed)
        source_model, source_arch = user_model(source_path, data.info, arch, arch_kwargs)
        attackers = _attackers(threat_models, source_model, independent_path, data.info, *models)
        named = dict(_target(spec, data.info, *models) for spec in targets)
        budget = eps if eps is not None else data.info.eps
        specs = [AttackSpec(attack, eps=budget, seed=seed) for attack in attacks]
        spec = data_spec.or_recorded(data.info)
        config = _config(spec, data.info, source_path, source_arch, list(named), arch_kwargs, device)
        config = replace(config, attacks=attacks, eps=budget, threat_models=threat_models, n_test=n_test,
                         seeds=[seed])  # fmt: skip
    source = (
        attackers["dense"]
        if "dense" in attackers
        else to_art_classifier(source_model, data.info, device=device)
    )
    named = {SOURCE_TARGET: UserTarget(source, source_model, "baseline"), **named}
    x, y = data.numpy("test")
    bar = tqdm(total=len(specs) * len(attackers), desc="evaluate", disable=quiet, leave=False)

    def step(label: str) -> None:
        bar.set_postfix_str(label)
        bar.update(1)

    with user_errors():
        rows = evaluate_rows(attackers, named, x, y, specs, seed, step)
    bar.close()
    click.echo(rows_table(rows))
    if out is not None:
        files = write_evaluation(rows, config, out, device)
        click.echo(f"\nwrote {', '.join(str(path) for path in files.values())}")


def _config(
    spec: Any, info: Any, source_path: str, source_arch: str, targets: list[str], arch_kwargs: str | None,
    device: str,
) -> Any:  # fmt: skip
    """The run as a :class:`~gap_art.bench.BenchConfig` (``targets`` set): what report and compare read."""
    from gap_art.bench import BenchConfig

    size, mean, std = (list(v) if v else None for v in (spec.input_size, info.mean, info.std))
    return BenchConfig(
        dataset=spec.dataset or "digits", arch=source_arch, arch_kwargs=arch_kwargs, data=spec.path,
        input_size=size, mean=mean, std=std, data_dir=spec.data_dir, methods=[], targets=targets,
        compression=[], defences=[], int8=False, whitebox_attacks=[], sanity_checks=False, device=device,
        source_checkpoint=source_path,
    )  # fmt: skip


def _attackers(
    threats: list[str],
    source: Any,
    independent_path: str | None,
    info: Any,
    arch: str | None,
    arch_kwargs: str | None,
    device: str,
) -> dict[str, Any]:
    """The classifier each requested threat model crafts on (``--threat-models``); ``source`` is
    the source model, loaded once by the caller."""
    from gap_art.classifiers import to_art_classifier
    from gap_art.models.ensemble import EnsembleModule
    from gap_art.validation import check_choices

    if "replica" in threats:
        raise ParameterError(
            "threat_models: a replica reruns each target's method on the source; gap-art bench "
            "--source-checkpoint MODEL --threat-models replica runs it for the methods it builds"
        )
    check_choices(threats, "threat_models", EVALUATE_THREATS)
    models = {"dense": source}
    if {"independent", "ensemble"} & set(threats):
        if independent_path is None:
            raise ParameterError(
                "threat_models independent and ensemble need --independent MODEL (the attacker's own)"
            )
        models["independent"] = user_model(independent_path, info, arch, arch_kwargs)[0]
        models["ensemble"] = EnsembleModule([source, models["independent"]])
    return {threat: to_art_classifier(models[threat], info, device=device) for threat in threats}
