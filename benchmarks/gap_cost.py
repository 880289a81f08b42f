"""GAP's cost and what it buys: wall time of GAP (calibration attacks + scoring + fine-tuning),
of the transfer hardenings (iterative GAP, magnitude or GAP + transfer adversarial fine-tuning,
magnitude + gradient misalignment, magnitude + pool hardening with one replica of its own,
built inside the timing) and of ART's trainers on the dense model (ensemble adversarial
training, Madry PGD, FBF), on the same model and data, and the clean and transfer accuracy
(PGD from the source) each reaches. Also GAP's overhead over bare crafting of its calibration
attacks.

By default each method trains one epoch. ``--curve-epochs N`` trains each for N epochs without
early stopping and times every epoch (issue 37: robustness per CPU-minute): a validation split
no model trains on, and an independent model (the source's architecture, another seed) as a
second transfer source; after each epoch, validation clean accuracy and accuracy under the worse
of the two transfer sources. For each ``--clean-costs`` budget, the epoch the study's rule picks
(``gap_art.bench.epoch_picks.choose_epoch``: within the budget of the dense model's validation
clean accuracy, the highest worst-source accuracy), scored on test, with the seconds it took to
reach it (the method's setup, then its epochs; the curve's own evaluation left out).

Run: python benchmarks/gap_cost.py [--dataset fashion-mnist] [--model lenet-wide --epochs 6]
     [--curve-epochs 8 --clean-costs 0.02,0.05,0.1]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from art.estimators.classification import PyTorchClassifier
from common import machine, write_results

from gap_art.attacks import make_attack
from gap_art.bench.epoch_picks import choose_epoch
from gap_art.classifiers import rewrap_classifier, to_art_classifier
from gap_art.data import load_dataset
from gap_art.defences import GreedyAdversarialPruning, art_builtin
from gap_art.defences.art_builtin import TrainingData
from gap_art.defences.hardening import accuracy
from gap_art.defences.methods import apply_method, parse_method
from gap_art.evaluation.export import fixed_width_table
from gap_art.evaluation.metrics import mcnemar_exact
from gap_art.models import create_model
from gap_art.runtime import seeded
from gap_art.settings import AttackSpec, FinetuneSpec
from gap_art.training import RECIPES, train_model

SETUPS = {"digits": ("small-cnn", 30, None, None), "fashion-mnist": ("lenet", 3, 20000, 1000)}
"""Per dataset: the default model, its training epochs, training and test images (all: None)."""

VALIDATION_FRACTION = 0.1
"""With ``--curve-epochs``: the validation split's share of the training set's size."""

LEAK_MARK = " ‡"
"""After a transfer accuracy whose examples leak labels (see :func:`scored_on_test`)."""

Sets = list[tuple[np.ndarray, np.ndarray]]
"""Labelled sets: clean first, then one per transfer source."""


def scored_on_test(classifier: PyTorchClassifier, test: Sets) -> dict[str, Any]:
    """Clean accuracy, transfer accuracy per source, and per source whether it leaks labels:
    the examples right significantly more often attacked than clean (exact McNemar, two-sided,
    0.05), which is never robustness (the bench's flag, ``transfer_exceeds_clean``)."""
    (x, y), *attacked = test
    clean = classifier.predict(x).argmax(1) == y
    correct = [classifier.predict(adv).argmax(1) == labels for adv, labels in attacked]
    leaks = [(t := mcnemar_exact(c, clean)).difference > 0 and t.p_value < 0.05 for c in correct]
    return {
        "clean_accuracy": float(clean.mean()),
        "transfer_accuracy": [float(c.mean()) for c in correct],
        "leaks_labels": leaks,
    }


class TimedCurve:
    """A ``finetune_monitor`` that times a method's training: per call (epoch 0 before
    training, then each epoch) the seconds since :meth:`start`, its own time left out; given
    ``validation`` (clean, then adversarial per source), the clean and worst-source accuracy
    there, and that epoch's weights."""

    def __init__(self, validation: Sets | None) -> None:
        self.validation = validation
        self.seconds: list[float] = []
        self.points: list[tuple[int, float, float]] = []
        self.states: list[dict[str, torch.Tensor]] = []
        self.began = self.watching = 0.0

    def start(self) -> None:
        self.began, self.watching = time.perf_counter(), 0.0

    def elapsed(self) -> float:
        return time.perf_counter() - self.began - self.watching

    def __call__(self, epoch: int, classifier: PyTorchClassifier) -> None:
        paused = time.perf_counter()
        self.seconds.append(paused - self.began - self.watching)
        if self.validation is not None:
            clean, *adversarial = (accuracy(classifier, x, y) for x, y in self.validation)
            self.points.append((epoch, clean, min(adversarial)))
            self.states.append({k: v.detach().clone() for k, v in classifier.model.state_dict().items()})
        self.watching += time.perf_counter() - paused


Method = Callable[[TimedCurve], PyTorchClassifier]


def hardenings(
    source, compression: float, epochs: int, data: tuple[np.ndarray, ...], eps: float
) -> dict[str, Method]:
    """Every other method, each ``epochs`` of (hardened) fine-tuning: GAP in three rounds,
    magnitude pruning then transfer adversarial or gradient misalignment fine-tuning, the pool
    hardening, ART's ensemble adversarial training and trainers on the dense model (time
    includes pruning and the attacks each crafts)."""
    x, y, x_cal, y_cal = data

    def spec_of(name: str, rounds: int = 1, seed: int = 0) -> Any:
        finetune = FinetuneSpec(epochs, seed=seed)
        return parse_method(
            name,
            compression=compression,
            rounds=rounds,
            finetune=finetune,
            hardening_attack=AttackSpec(eps=eps),
            seed=seed,
        )

    def method(name: str, rounds: int = 1) -> Method:
        return lambda curve: apply_method(spec_of(name, rounds), source, x_cal, y_cal, x, y, curve).classifier

    def pool(curve: TimedCurve) -> PyTorchClassifier:
        """+pool with a pool of its own: M and one replica of magnitude+tat on another seed,
        trained as long, whose building is part of the cost."""
        replica = apply_method(spec_of("magnitude+tat", seed=1), source, x_cal, y_cal, x, y).classifier
        spec = spec_of("magnitude+pool")
        return apply_method(spec, source, x_cal, y_cal, x, y, curve, extra_sources=[replica]).classifier

    def art(name: str) -> Method:
        def train(curve: TimedCurve) -> PyTorchClassifier:
            training = TrainingData(x, y, source.model, FinetuneSpec(epochs), eps, monitor=curve)
            return rewrap_classifier(source, art_builtin.get(name).train(source, training))

        return train

    return {
        "gap-iter (3 rounds)": method("gap-iter", rounds=3),
        "magnitude+tat": method("magnitude+tat"),
        "gap-grad+tat": method("gap-grad+tat"),
        "magnitude+gal": method("magnitude+gal"),
        "magnitude+pool (M + 1 own replica)": pool,
        "ART ensemble-adv (dense)": art("ensemble-adv"),
        "ART madry-pgd (dense)": art("madry-pgd"),
        "ART fbf (dense)": art("fbf"),
    }


def trained_source(name: str, bundle, epochs: int, seed: int) -> PyTorchClassifier:
    torch.manual_seed(seed)
    model = create_model(name, bundle.info.input_shape, bundle.info.nb_classes)
    train_model(model, bundle.train, epochs, RECIPES["adam"], progress=False)
    return to_art_classifier(model, bundle.info, device="cpu")


def transfer_sets(sources: list[PyTorchClassifier], x: np.ndarray, y: np.ndarray, eps: float) -> Sets:
    """``(x, y)``, then PGD at ``eps`` crafted on each source."""
    crafted = [make_attack("pgd", s, eps=eps, eps_step=eps / 4, seed=0).generate(x, y) for s in sources]
    return [(x, y)] + [(adv, y) for adv in crafted]


def kept_points(
    curve: TimedCurve, classifier, test: Sets, dense_clean: float, costs: list[float], base: float
) -> list[dict[str, Any]]:
    """Per clean cost, the epoch validation picks, the seconds to it, and its test scores; the
    worst-source accuracy gained over the dense model's per minute, except at epoch 0 (before
    training: no gain to divide, and seconds too few to divide by)."""
    kept = []
    for cost in costs:
        index = choose_epoch(curve.points, [], dense_clean - cost)
        if index is None:
            kept.append({"clean_cost": cost, "epoch": None})
            continue
        classifier.model.load_state_dict(curve.states[index])
        scores, seconds = scored_on_test(classifier, test), curve.seconds[index]
        worst = min(scores["transfer_accuracy"])
        kept.append(
            {
                "clean_cost": cost,
                "epoch": curve.points[index][0],
                "seconds": seconds,
                **scores,
                "worst_transfer_accuracy": worst,
                "worst_gain_per_minute": (worst - base) / (seconds / 60) if index else None,
            }
        )
    return kept


def record(
    method: str, seconds: float, curve: TimedCurve, classifier, test: Sets, base: float
) -> dict[str, Any]:
    """A method's row: seconds in all, before training and per epoch; test clean accuracy and
    transfer accuracy from each source after its last epoch."""
    scores = scored_on_test(classifier, test)
    transfer = scores["transfer_accuracy"]
    row = {
        "method": method,
        "seconds": seconds,
        "seconds_before_training": curve.seconds[0],
        "seconds_per_epoch": float(np.mean(np.diff(curve.seconds))),
        "clean_accuracy": scores["clean_accuracy"],
        "transfer_accuracy": transfer[0],
        "leaks_labels": scores["leaks_labels"][0],
        "transfer_gain_per_s": (transfer[0] - base) / seconds,
    }
    if len(transfer) > 1:
        row["transfer_accuracy_by_source"] = transfer
        row["leaks_labels_by_source"] = scores["leaks_labels"]
        row["curve"] = [
            {"epoch": e, "seconds": s, "validation_clean": c, "validation_worst_transfer": w}
            for (e, c, w), s in zip(curve.points, curve.seconds, strict=True)
        ]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion-mnist", choices=sorted(SETUPS))
    parser.add_argument("--n-calibration", type=int, default=1024)
    parser.add_argument("--compression", type=float, default=4.0)
    parser.add_argument("--model", default=None, help="default: the dataset's (lenet for fashion-mnist)")
    parser.add_argument("--epochs", type=int, default=None, help="source training epochs")
    parser.add_argument(
        "--curve-epochs", type=int, default=None, help="train every method this long, timed per epoch"
    )
    parser.add_argument(
        "--clean-costs", default="0.02,0.05,0.1", help="with --curve-epochs: the kept points' budgets"
    )
    args = parser.parse_args()
    name, epochs, n_train, n_test = SETUPS[args.dataset]
    name, epochs = args.model or name, args.epochs or epochs
    curves = args.curve_epochs is not None
    bundle = load_dataset(
        args.dataset,
        n_train=n_train,
        n_test=n_test,
        validation_fraction=VALIDATION_FRACTION if curves else None,
    )
    source = trained_source(name, bundle, epochs, seed=0)
    sources = [source, trained_source(name, bundle, epochs, seed=1)] if curves else [source]
    x, y = bundle.numpy("train")
    eps = bundle.info.eps
    test = transfer_sets(sources, *bundle.numpy("test"), eps)
    validation = transfer_sets(sources, *bundle.numpy("validation"), eps) if curves else None
    cal = np.random.default_rng(0).choice(len(x), args.n_calibration, replace=False)
    x_cal, y_cal = x[cal], y[cal]
    hardening_epochs = args.curve_epochs or 1

    # bare crafting of GAP's calibration attacks (GAP's own default budget), then GAP
    crafter = make_attack("pgd", source, eps=2 / 255, eps_step=0.001, batch_size=128, seed=None)
    start = time.perf_counter()
    with seeded(0):
        crafter.generate(x_cal, y_cal)
    craft_s = time.perf_counter() - start
    gap = GreedyAdversarialPruning(
        source, args.compression, nb_calibration=None, finetune_epochs=hardening_epochs, seed=0
    )
    gap.finetune_monitor = curve = TimedCurve(validation)
    curve.start()
    gap.fit(x_cal, y_cal)
    score_s = curve.elapsed()
    runs = {"gap (grad)": (gap(x, y=y), curve.elapsed(), curve)}
    methods = hardenings(source, args.compression, hardening_epochs, (x, y, x_cal, y_cal), eps)
    for method, train in methods.items():
        curve = TimedCurve(validation)
        curve.start()
        with seeded(0):
            classifier = train(curve)
        runs[method] = (classifier, curve.elapsed(), curve)

    base = own_pgd_accuracy(source, test)
    records = [record(m, seconds, curve, c, test, base) for m, (c, seconds, curve) in runs.items()]
    print(machine())
    print(
        f"{args.dataset}, {name}, {len(x)} training images, PGD eps {eps:g} from the source "
        f"(source transfer accuracy {base:.3f}); methods at "
        f"{args.compression:g}x, {hardening_epochs} epoch(s) each, {args.n_calibration} calibration images\n"
    )
    print(
        fixed_width_table(
            ["method", "seconds", "before training", "per epoch", "clean", "transfer", "transfer gain / s"],
            [
                [
                    r["method"],
                    *(f"{r[k]:.1f}" for k in ("seconds", "seconds_before_training", "seconds_per_epoch")),
                    f"{r['clean_accuracy']:.3f}",
                    f"{r['transfer_accuracy']:.3f}" + LEAK_MARK * r["leaks_labels"],
                    f"{r['transfer_gain_per_s']:.4f}",
                ]
                for r in records
            ],
        )
    )
    overhead = score_s / craft_s - 1
    print(
        f"\nGAP scoring {score_s:.2f} s vs bare crafting of its calibration attacks {craft_s:.2f} s: "
        f"overhead {100 * overhead:.1f}%"
    )
    print(
        f"{LEAK_MARK.strip()}: the transfer examples leak labels "
        "(right more often than clean, exact McNemar p < 0.05)"
    )
    results: dict[str, Any] = {
        "dataset": args.dataset,
        "model": name,
        "compression": args.compression,
        "n_calibration": args.n_calibration,
        "hardening_epochs": hardening_epochs,
        "source_transfer_accuracy": base,
        "rows": records,
        "gap_scoring_s": score_s,
        "calibration_crafting_s": craft_s,
        "gap_overhead_over_crafting": overhead,
    }
    if validation is not None:
        worst = min(accuracy(source, adv, labels) for adv, labels in test[1:])
        results["kept_points"] = report_kept(runs, validation, test, source, args.clean_costs, worst)
    suffix = (f"_{name}" if args.model else "") + ("_curves" if curves else "")
    write_results(f"gap_cost_{args.dataset}{suffix}", results)


def own_pgd_accuracy(source: PyTorchClassifier, test: Sets) -> float:
    """The source's accuracy under its own PGD (the first transfer set)."""
    return accuracy(source, *test[1])


def report_kept(runs, validation: Sets, test: Sets, source, costs_text: str, base: float) -> dict[str, Any]:
    """Each method's kept point per clean cost, printed and returned by method name."""
    costs = [float(c) for c in costs_text.split(",")]
    dense_clean = accuracy(source, *validation[0])
    kept = {m: kept_points(curve, c, test, dense_clean, costs, base) for m, (c, _, curve) in runs.items()}
    rows = [
        [m, f"{p['clean_cost']:g}"]
        + (
            ["none within the cost"] + [""] * 4
            if p["epoch"] is None
            else [
                str(p["epoch"]),
                f"{p['seconds']:.1f}",
                f"{p['clean_accuracy']:.3f}",
                f"{p['worst_transfer_accuracy']:.3f}" + LEAK_MARK * any(p["leaks_labels"]),
                "-" if p["worst_gain_per_minute"] is None else f"{p['worst_gain_per_minute']:.3f}",
            ]
        )
        for m, points in kept.items()
        for p in points
    ]
    print(
        "\nKept points (validation's pick within each clean cost of the dense model's "
        f"{dense_clean:.3f}; test scores):"
    )
    print(
        fixed_width_table(
            ["method", "cost", "epoch", "seconds to it", "clean", "worst transfer", "gain / minute"], rows
        )
    )
    return {
        "dense_validation_clean": dense_clean,
        "dense_worst_transfer": base,
        "clean_costs": costs,
        "by_method": kept,
    }


if __name__ == "__main__":
    main()
