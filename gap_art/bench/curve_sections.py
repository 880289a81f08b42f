"""The report's training curves (``training_curves``): for each hardened or pretrained target,
clean, transferred and white-box accuracy on the validation rows after each epoch, over seeds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import mean

from gap_art.bench.attack_roles import primary_attack
from gap_art.bench.config import BenchConfig
from gap_art.bench.document import Document
from gap_art.bench.rows import Row
from gap_art.bench.target_names import PICK

PICKS_NOTE = (
    " 'Within N pt': the epoch validation chose within N points of the dense model's clean "
    "accuracy, the most robust against its worst transfer source (a target of its own, named "
    "<target>~Npt, scored on test)."
)


@dataclass
class TargetCurves:
    """One target's training curves over seeds: the ``columns`` measured, each seed's values
    per epoch (``None`` where a source had no model then), the epoch each seed kept, and per
    clean-accuracy budget (``curve_budgets``: ``2pt``) the epoch validation chose in each seed."""

    columns: list[str]
    by_epoch: dict[int, list[list[float | None]]] = field(default_factory=dict)
    kept: list[int] = field(default_factory=list)
    chosen: dict[str, list[int]] = field(default_factory=dict)

    def add(self, row: Row) -> None:
        sources = row.get("validation_curve_sources") or []
        for i, point in enumerate(row["validation_curve"]):
            values = [*point[1:4], *(s["accuracy"][i] for s in sources)]
            self.by_epoch.setdefault(int(point[0]), []).append(values)
        best = row.get("finetune_best_epoch")  # none recorded: every epoch trained, the last kept
        self.kept.append(int(row["validation_curve"][-1][0]) if best is None else int(best))


def training_curves(rows: Sequence[Row], config: BenchConfig) -> dict[str, TargetCurves]:
    """Per target whose curve holds white-box points (recorded with ``training_curves``), its
    curves over seeds, read from one row per target and seed (the primary attack from the dense
    model at the study's eps)."""
    attack, found = primary_attack(config).upper(), dict[str, TargetCurves]()
    for r in rows:
        curve = r.get("validation_curve") or []
        primary = r["attack"] == primary_attack(config) and r["threat_model"] == "dense"
        if not primary or r["eps"] != config.attack_eps or not curve or len(curve[0]) < 4:
            continue
        sources = [f"{attack} from {s['source']}" for s in r.get("validation_curve_sources") or []]
        columns = ["clean", f"{attack} from dense", f"{attack} white-box", *sources]
        found.setdefault(r["target"], TargetCurves(columns)).add(r)
    for r in rows:  # the epochs chosen within each budget (epoch_picks), after their curves
        curve_name, pick, budget = str(r["target"]).partition(PICK)
        primary = r["attack"] == primary_attack(config) and r["threat_model"] == "dense"
        if pick and primary and curve_name in found and r.get("finetune_best_epoch") is not None:
            found[curve_name].chosen.setdefault(budget, []).append(int(r["finetune_best_epoch"]))
    return found


def curves_section(doc: Document, rows: Sequence[Row], config: BenchConfig) -> None:
    """One table per target recorded with ``training_curves``: the mean over seeds after each
    epoch (0: before training), in how many seeds early stopping kept that epoch, and in how
    many validation chose it within each of ``curve_budgets``."""
    curves = training_curves(rows, config)
    if not curves:
        return
    doc.heading("Training curves (validation rows)")
    doc.paragraph(
        "After each epoch of training (0: before), on the validation rows no model trained on: "
        "clean accuracy and accuracy under the primary attack transferred from the dense model, "
        "run white-box on the model at that epoch, transferred from each attacker's own model "
        "and from the replica an attacker trains the same way, taken at the same epoch. Means "
        "over the seeds that reached the epoch; every epoch's model is kept in the study's cache."
        + PICKS_NOTE
        * any(curve.chosen for curve in curves.values())
    )
    for target, curve in curves.items():
        table = []
        for epoch, seeds in sorted(curve.by_epoch.items()):
            means = [_mean([values[i] for values in seeds]) for i in range(len(curve.columns))]
            counts = [curve.kept, *curve.chosen.values()]
            table.append(
                [str(epoch), str(len(seeds)), *means, *(f"{c.count(epoch)} of {len(c)}" for c in counts)]
            )
        budgets = [f"within {budget} in" for budget in curve.chosen]
        doc.heading(target, level=3)
        doc.table(["epoch", "seeds", *curve.columns, "kept in", *budgets], table)


def _mean(values: list[float | None]) -> str:
    present = [v for v in values if v is not None]
    return f"{mean(present):.3f}" if present else "-"
