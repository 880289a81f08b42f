"""The columns a study derives across its cells, once every cell is in: the worst case per
example, the worst attacker per target, sanity and gradient-masking flags, collapsed classes
and label leaking (:func:`annotate` applies them all)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any, cast

import numpy as np

from gap_art.attacks import is_linf
from gap_art.bench.rows import Row, metric, unpack_correct
from gap_art.evaluation.metrics import recall_collapsed
from gap_art.evaluation.sanity import SanityCheck, untrusted_attacks


def _linf_groups(rows: Sequence[Row], eps: float, field: str) -> list[tuple[list[Row], list[Row]]]:
    """Per (seed, target): its rows at the nominal ``eps``, and those of them whose L-inf
    attack holds ``field``, which a worst case is taken over (an L2 attack such as CW, whose
    examples ``eps`` does not bound in L-inf, keeps its own row and never enters an L-inf
    minimum). Targets with no such row are left out."""
    groups: dict[tuple[int, str], tuple[list[Row], list[Row]]] = defaultdict(lambda: ([], []))
    for row in rows:
        if row["eps"] != eps:
            continue
        every, members = groups[(row["seed"], row["target"])]
        every.append(row)
        if not row.get("error") and row.get(field) not in (None, "") and is_linf(row["attack"]):
            members.append(row)
    return [(every, members) for every, members in groups.values() if members]


def add_worst_case(rows: Sequence[Row], eps: float) -> None:
    """``worst_case_transfer_accuracy``: the fraction of examples that a target classifies
    correctly under every L-inf attack and every threat model (at the nominal eps), per seed;
    written on every row of the target, its L2 rows included."""
    for every, members in _linf_groups(rows, eps, "transfer_correct"):
        worst = np.logical_and.reduce([unpack_correct(m) for m in members])
        for row in every:
            row["worst_case_transfer_accuracy"] = float(worst.mean())


def add_worst_attacker(rows: Sequence[Row], eps: float) -> None:
    """``worst_attacker_transfer_accuracy``: per (seed, target), the lowest transfer accuracy
    over every threat model and L-inf attack run at the nominal eps, and ``worst_attacker``
    (which threat model and attack), on every row of the target. A defence is judged by the
    attacker it did not train on; a minimum only falls as attackers are added, so a leaking
    cell never raises it."""
    for every, members in _linf_groups(rows, eps, "transfer_accuracy"):
        # a tie goes to the first attacker and attack by name, whatever order the rows came in
        worst = min(members, key=lambda m: (m["transfer_accuracy"] or 0.0, m["threat_model"], m["attack"]))
        for row in every:
            row["worst_attacker_transfer_accuracy"] = worst["transfer_accuracy"]
            row["worst_attacker"] = f"{worst['threat_model']} {worst['attack']}"


def add_sanity_flags(rows: Sequence[Row], checks_by_seed: dict[int, list[SanityCheck]]) -> None:
    """``trustworthy`` is False, and ``sanity_failures`` names why, where a failed sanity
    check on that seed's source covers the row's attack. Numbers are kept, not hidden."""
    for row in rows:
        checks = checks_by_seed.get(row["seed"])
        if checks is None:
            continue
        failures = untrusted_attacks(checks).get(row["attack"], [])
        row["trustworthy"] = not failures
        row["sanity_failures"] = failures


MASKING = "gradient masking"
"""How a row's ``sanity_failures`` names a target that white-box attacks do worse on than transfer."""


def add_masking_flags(rows: Sequence[Row], eps: float) -> None:
    """A gradient-masking check on every target attacked through its own gradients: a white-box
    attack must leave no more accuracy than the same attack transferred from any attacker (same
    seed, ``eps``). Where even the lower end of the white-box interval is above the best transfer,
    every row of that target is marked untrustworthy and its ``sanity_failures`` say why: its
    gradients hide what transfer finds. (Attacks are compared with themselves: an unbounded L2
    CW beating a bounded PGD is no masking.)"""
    best: dict[tuple[int, str, str], float] = {}
    for row in rows:
        transfer = row.get("transfer_accuracy")
        if not row.get("error") and row["eps"] == eps and transfer is not None:
            key = (row["seed"], row["target"], row["attack"])
            best[key] = min(best.get(key, transfer), transfer)
    for row in rows:
        low = metric(row, "whitebox_accuracy_ci_low")
        direct = str(row.get("whitebox_mode") or "").startswith("direct")
        floor = best.get((row["seed"], row["target"], row["attack"]))
        if not direct or low is None or floor is None or row["eps"] != eps or low <= floor:
            continue
        accuracy = row.get("whitebox_accuracy")
        message = (
            f"{MASKING}: white-box {row['attack']} leaves {accuracy:.3f}, above its best transfer {floor:.3f}"
        )
        for other in rows:
            if (other["seed"], other["target"]) == (row["seed"], row["target"]):
                other["trustworthy"] = False
                other["sanity_failures"] = [*(other.get("sanity_failures") or []), message]


def masked_targets(rows: Sequence[Row]) -> set[str]:
    """The targets :func:`add_masking_flags` marked."""
    return {r["target"] for r in rows if any(f.startswith(MASKING) for f in r.get("sanity_failures") or [])}


COLLAPSE_LEVEL = 0.01
"""Family-wise level of the collapse test over one target's classes (Bonferroni)."""


def add_collapse_flags(rows: Sequence[Row]) -> None:
    """``collapsed_classes``: the classes whose clean recall is significantly below half of the
    dense model's (same seed): an exact one-sided binomial test over the class's examples
    (:func:`~gap_art.evaluation.metrics.recall_collapsed`), Bonferroni-corrected over the
    classes. Such a target "resists" transfer by being broken; it is flagged in every report
    and never called best. It is decided on the validation rows (``validation_class_recall``),
    so the test sample chooses nothing; ``collapsed_classes_test`` reports the same test on the
    test rows. Targets without validation recall (int8 targets, the user's files in ``gap-art
    evaluate``, rows before 0.3) are decided on the test rows. Rows written before 0.2 lack the
    class sizes: for them, the bare "below half" threshold."""
    dense = {
        on: {r["seed"]: _recall(r, on)[0] for r in rows if r["target"] == "dense"} for on in (False, True)
    }
    for row in rows:
        verdicts: dict[bool, list[int]] = {}
        for on_validation, references in dense.items():
            reference, (recall, support) = references.get(row["seed"]), _recall(row, on_validation)
            if reference and recall:
                verdicts[on_validation] = _collapsed(recall, support, reference)
        if False in verdicts:
            row["collapsed_classes_test"] = verdicts[False]
        if verdicts:
            row["collapsed_classes"] = verdicts.get(True, verdicts.get(False))


def _recall(row: Row, on_validation: bool) -> tuple[list[float | None] | None, list[int] | None]:
    """A row's clean recall per class and class sizes, on its validation rows or its test rows."""
    if on_validation:
        return row.get("validation_class_recall"), row.get("validation_class_support")
    return row.get("class_recall"), row.get("class_support")


def _collapsed(
    recall: list[float | None], support: list[int] | None, reference: list[float | None]
) -> list[int]:
    level = COLLAPSE_LEVEL / len(recall)
    return [
        k
        for k, (ours, theirs) in enumerate(zip(recall, reference, strict=True))
        if ours is not None
        and theirs is not None
        and (recall_collapsed(ours, support[k], theirs, level) if support else ours < 0.5 * theirs)
    ]


def add_leak_flags(rows: Sequence[Row]) -> None:
    """``transfer_exceeds_clean``: the target classifies the attacker's examples more often
    correctly than the clean ones, the label-leaking signature of training on that attacker's
    examples (it may have learnt the perturbation pattern, not robustness). Flagged in every
    report; judge such a target by attackers and attacks it was not trained on."""
    for row in rows:
        clean, transfer = row.get("clean_accuracy"), row.get("transfer_accuracy")
        if clean is not None and transfer is not None and not row.get("error"):
            row["transfer_exceeds_clean"] = transfer > clean


DERIVED = (
    "worst_case_transfer_accuracy",
    "worst_attacker_transfer_accuracy",
    "worst_attacker",
    "trustworthy",
    "sanity_failures",
    "collapsed_classes",
    "collapsed_classes_test",
    "transfer_exceeds_clean",
)
"""The columns :func:`annotate` derives across cells."""


def annotate(rows: Sequence[Row], checks_by_seed: dict[int, list[SanityCheck]], eps: float) -> None:
    """Every cross-cell column of a study's rows (:data:`DERIVED`), derived afresh from the
    cells: the same whether the study just ran or its results.json is read back."""
    for row in rows:
        for name in DERIVED:
            cast(dict[str, Any], row).pop(name, None)
    add_worst_case(rows, eps)
    add_worst_attacker(rows, eps)
    add_sanity_flags(rows, checks_by_seed)
    add_masking_flags(rows, eps)
    add_collapse_flags(rows)
    add_leak_flags(rows)
