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
from gap_art.evaluation.metrics import collapsed_classes, mcnemar_exact
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


FULL_STRENGTH = 0.01
"""The most a white-box L-inf attack may leave correct on the undefended dense model (issue 36:
at least 99% of the test images fooled at the study's eps)."""
FULL_STRENGTH_CHECK = "{} at full strength white-box"


def add_full_strength_checks(
    rows: Sequence[Row], checks_by_seed: dict[int, list[SanityCheck]], eps: float
) -> None:
    """Add to each seed's sanity checks (in place, replacing earlier ones of the kind) one per
    L-inf attack run white-box on the undefended dense model: it passes when that attack leaves at
    most :data:`FULL_STRENGTH` of the test images correct (AutoAttack, where the study runs it on a
    subsample, of its subsample). A weaker attack makes every figure it
    gives an upper bound of unknown slack: strengthen the attack, never the threshold. Each
    check's detail lists what every such attack of its seed left, so a reader sees whether the
    stronger attacks agree (the model holds those images) or break it (the attack was weak)."""
    measured: dict[int, list[tuple[str, float, str]]] = {}  # seed: (attack, accuracy, as quoted)
    for row in rows:
        own = row["target"] == "dense" and row["threat_model"] == "dense" and row["eps"] == eps
        if not own or row.get("error") or not is_linf(row["attack"]):
            continue
        autoattack = f"autoattack on {row.get('autoattack_n')} images"
        for attack, accuracy, quoted in (
            (row["attack"], row.get("whitebox_accuracy"), row["attack"]),
            ("autoattack", row.get("autoattack_accuracy"), autoattack),
        ):
            if accuracy is not None:
                measured.setdefault(row["seed"], []).append((attack, accuracy, quoted))
    for seed, runs in measured.items():
        compared = ", ".join(f"{quoted} {accuracy:.3f}" for _, accuracy, quoted in runs)
        for attack, accuracy, _ in runs:
            name = FULL_STRENGTH_CHECK.format(attack)
            check = SanityCheck(
                name, accuracy <= FULL_STRENGTH, accuracy,
                f"white-box accuracy <= {FULL_STRENGTH:g} on the undefended dense model at the study's eps",
                (attack,),
                "a weaker attack only bounds the robustness it reports from above"
                + (f"; every white-box attack of the seed left: {compared}" if len(runs) > 1 else ""),
            )  # fmt: skip
            kept = [c for c in checks_by_seed.get(seed, []) if c.name != name]
            checks_by_seed[seed] = [*kept, check]


MASKING = "gradient masking"
"""How a row's ``sanity_failures`` names a target that white-box attacks do worse on than transfer."""


MASKING_LEVEL = 0.05
"""Family-wise level of the masking test over one white-box cell's transfer cells (Bonferroni)."""


def add_masking_flags(rows: Sequence[Row], eps: float) -> None:
    """A gradient-masking check on every target attacked through its own gradients: a white-box
    attack must leave no more correct than the same attack transferred. Decided on the
    validation rows where the target has them (the primary attack run white-box on the kept
    model against the same attack transferred from the dense model, paired on the same images,
    exact McNemar at :data:`MASKING_LEVEL`), so the test sample chooses nothing; on the test
    rows otherwise (int8 targets, rows before 0.3: each white-box cell against every transfer
    cell of its attack, same seed and ``eps``, Bonferroni over them). ``gradient_masking`` holds
    the decision on every row of the target, ``gradient_masking_test`` what the test rows show on
    each white-box cell; a masked target's rows are marked untrustworthy and their
    ``sanity_failures`` say why: its gradients hide what transfer finds. (Attacks are compared
    with themselves: an unbounded L2 CW beating a bounded PGD is no masking.) Rows written before
    0.3, without per-example white-box correctness, fall back to the lower end of the white-box
    interval against the best transfer."""
    on_test = _masking_on_test(rows, eps)
    targets = {(r["seed"], r["target"]): r for r in rows if not r.get("error")}
    for key, row in targets.items():
        validation = _masking_on_validation(row)
        found = on_test.get(key, "") if validation is None else validation
        for other in rows:
            if (other["seed"], other["target"]) == key:
                other["gradient_masking"] = bool(found)
        if found:
            _mark_target(rows, row, f"{MASKING}: {found}")


def _masking_on_validation(row: Row) -> str | None:
    """Why the target of ``row`` masks gradients on the validation rows: ``""`` where it does
    not, ``None`` where it has no validation white-box examples (the test rows decide)."""
    if not row.get("validation_whitebox_correct") or not row.get("validation_transfer_correct"):
        return None
    whitebox = unpack_correct(row, "validation_whitebox_correct")
    test = mcnemar_exact(whitebox, unpack_correct(row, "validation_transfer_correct"))
    if test.difference > 0 and test.p_value < MASKING_LEVEL:
        return (
            f"white-box {row.get('validation_attack')} leaves {whitebox.mean():.3f} of the validation rows "
            f"correct, significantly more than its transfer from the dense model (p = {test.p_value:.2g})"
        )
    return ""


def _masking_on_test(rows: Sequence[Row], eps: float) -> dict[tuple[int, str], str]:
    """Why each target masks gradients on the test rows, by (seed, target); each white-box cell
    gets ``gradient_masking_test``."""
    transfers: dict[tuple[int, str, str], list[Row]] = defaultdict(list)
    for row in rows:
        if not row.get("error") and row["eps"] == eps and row.get("transfer_accuracy") is not None:
            transfers[(row["seed"], row["target"], row["attack"])].append(row)
    found: dict[tuple[int, str], str] = {}
    for row in rows:
        direct = str(row.get("whitebox_mode") or "").startswith("direct")
        others = transfers.get((row["seed"], row["target"], row["attack"]), [])
        if not direct or row["eps"] != eps or not others or row.get("whitebox_accuracy") is None:
            continue
        floor = min(o["transfer_accuracy"] or 0.0 for o in others)
        row["gradient_masking_test"] = _masked(row, others, floor)
        if row["gradient_masking_test"]:
            found.setdefault(
                (row["seed"], row["target"]),
                f"white-box {row['attack']} leaves {row['whitebox_accuracy']:.3f}, "
                f"above its transfer from another attacker (lowest {floor:.3f})",
            )
    return found


def _masked(row: Row, transfers: list[Row], floor: float) -> bool:
    """Whether ``row``'s white-box examples are right significantly more often than some
    transfer cell's, paired per example (or, without per-example data, by interval)."""
    if not row.get("whitebox_correct"):
        low = metric(row, "whitebox_accuracy_ci_low")
        return low is not None and low > floor
    whitebox = unpack_correct(row, "whitebox_correct")
    paired = [o for o in transfers if o.get("transfer_correct") and o.get("n") == row.get("n")]
    for other in paired:
        test = mcnemar_exact(whitebox, unpack_correct(other))
        if test.difference > 0 and test.p_value < MASKING_LEVEL / len(paired):
            return True
    return False


def _mark_target(rows: Sequence[Row], flagged: Row, message: str) -> None:
    for other in rows:
        if (other["seed"], other["target"]) == (flagged["seed"], flagged["target"]):
            other["trustworthy"] = False
            other["sanity_failures"] = [*(other.get("sanity_failures") or []), message]


def masked_targets(rows: Sequence[Row]) -> set[str]:
    """The targets :func:`add_masking_flags` marked."""
    return {r["target"] for r in rows if any(f.startswith(MASKING) for f in r.get("sanity_failures") or [])}


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
        on: {r["seed"]: recall for r in rows if r["target"] == "dense" and (recall := _recall(r, on)[0])}
        for on in (False, True)
    }
    for row in rows:
        verdicts: dict[bool, list[int]] = {}
        for on_validation, references in dense.items():
            reference, (recall, support) = references.get(row["seed"]), _recall(row, on_validation)
            if reference and recall:
                verdicts[on_validation] = collapsed_classes(recall, support, reference)
        if False in verdicts:
            row["collapsed_classes_test"] = verdicts[False]
        if verdicts:
            row["collapsed_classes"] = verdicts.get(True, verdicts.get(False))


def weak_source_classes(rows: Sequence[Row]) -> dict[int, list[int]]:
    """The dense source's own collapsed classes, class by class with the seeds they show in: a
    class whose recall is significantly below half of the source's accuracy (the collapse test,
    on the validation rows where they were scored). Every target inherits such a class, so no
    relative flag can show it."""
    weak: dict[int, set[int]] = defaultdict(set)
    for row in rows:
        if row["target"] != "dense" or row.get("error"):
            continue
        recall, support = _recall(row, True) if _recall(row, True)[0] else _recall(row, False)
        scored = [r for r in recall or [] if r is not None]
        if not scored:
            continue
        accuracy = float(np.mean(scored))
        for k in collapsed_classes(recall or [], support, [accuracy] * len(recall or [])):
            weak[k].add(row["seed"])
    return {k: sorted(seeds) for k, seeds in sorted(weak.items())}


def _recall(row: Row, on_validation: bool) -> tuple[list[float | None] | None, list[int] | None]:
    """A row's clean recall per class and class sizes, on its validation rows or its test rows."""
    if on_validation:
        return row.get("validation_class_recall"), row.get("validation_class_support")
    return row.get("class_recall"), row.get("class_support")


LEAK_LEVEL = 0.05
"""Level of the paired test that calls a cell leaking."""


def add_leak_flags(rows: Sequence[Row]) -> None:
    """``transfer_exceeds_clean``: the target classifies the attacker's examples significantly
    more often correctly than the same examples clean (exact McNemar over the cell's examples,
    two-sided, at :data:`LEAK_LEVEL`), the label-leaking signature of training on that attacker's
    examples (it may have learnt the perturbation pattern, not robustness): a difference of an
    image or two is no leak. Flagged in every report; judge such a target by attackers and
    attacks it was not trained on. The cell of the attack crafted on the validation rows (the
    primary attack from the dense model) is decided there, so the test sample chooses nothing,
    and ``transfer_exceeds_clean_test`` says what the test rows show; every other cell, which
    has no validation examples, is decided on its test rows. Rows without per-example clean
    correctness (written before 0.3) fall back to ``transfer > clean``."""
    for row in rows:
        clean, transfer = row.get("clean_accuracy"), row.get("transfer_accuracy")
        if clean is None or transfer is None or row.get("error"):
            continue
        if row.get("clean_correct") and row.get("transfer_correct"):
            test = _leaks(row, "transfer_correct", "clean_correct")
        else:
            test = transfer > clean
        row["transfer_exceeds_clean_test"] = test
        on_validation = row.get("threat_model") == "dense" and row.get("attack") == row.get(
            "validation_attack"
        )
        if on_validation and row.get("validation_clean_correct") and row.get("validation_transfer_correct"):
            row["transfer_exceeds_clean"] = _leaks(
                row, "validation_transfer_correct", "validation_clean_correct"
            )
        else:
            row["transfer_exceeds_clean"] = test


def _leaks(row: Row, transfer: str, clean: str) -> bool:
    """Whether the row's examples are right significantly more often transferred than clean."""
    test = mcnemar_exact(unpack_correct(row, transfer), unpack_correct(row, clean))
    return test.difference > 0 and test.p_value < LEAK_LEVEL


DERIVED = (
    "worst_case_transfer_accuracy",
    "worst_attacker_transfer_accuracy",
    "worst_attacker",
    "trustworthy",
    "sanity_failures",
    "collapsed_classes",
    "collapsed_classes_test",
    "transfer_exceeds_clean",
    "transfer_exceeds_clean_test",
    "gradient_masking",
    "gradient_masking_test",
)
"""The columns :func:`annotate` derives across cells."""


def annotate(rows: Sequence[Row], checks_by_seed: dict[int, list[SanityCheck]], eps: float) -> None:
    """Every cross-cell column of a study's rows (:data:`DERIVED`), derived afresh from the
    cells: the same whether the study just ran or its results.json is read back; each seed's
    sanity checks gain the full-strength checks the dense rows decide."""
    for row in rows:
        for name in DERIVED:
            cast(dict[str, Any], row).pop(name, None)
    add_worst_case(rows, eps)
    add_worst_attacker(rows, eps)
    add_full_strength_checks(rows, checks_by_seed, eps)
    add_sanity_flags(rows, checks_by_seed)
    add_masking_flags(rows, eps)
    add_collapse_flags(rows)
    add_leak_flags(rows)
