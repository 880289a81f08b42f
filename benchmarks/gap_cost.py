"""GAP's cost and what it buys: wall time of GAP (calibration attacks + scoring + one
fine-tuning epoch), of the transfer hardenings (iterative GAP, magnitude or GAP + transfer
adversarial fine-tuning, magnitude + gradient misalignment, magnitude + pool hardening with one
replica of its own, built inside the timing) and of ART's trainers on the dense
model (ensemble adversarial training, Madry PGD, FBF), one epoch each on the same model and
data, and the clean and transfer accuracy (PGD from the source) each reaches. Also GAP's
overhead over bare crafting of its calibration attacks.

Run: python benchmarks/gap_cost.py [--dataset fashion-mnist] [--model lenet-wide --epochs 5]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from art.defences.trainer import AdversarialTrainerFBFPyTorch, AdversarialTrainerMadryPGD
from common import machine, write_results

from gap_art.attacks import make_attack
from gap_art.classifiers import rewrap_classifier, to_art_classifier
from gap_art.data import load_dataset
from gap_art.defences import GreedyAdversarialPruning, TransferAdversarialFinetuning
from gap_art.defences.methods import apply_method, parse_method
from gap_art.evaluation.export import fixed_width_table
from gap_art.models import create_model
from gap_art.pruning import clone_module
from gap_art.runtime import seeded
from gap_art.settings import AttackSpec, FinetuneSpec
from gap_art.training import RECIPES, train_model

SETUPS = {"digits": ("small-cnn", 30, None), "fashion-mnist": ("lenet", 3, 20000)}
"""Per dataset: the default model, its training epochs and training images."""


def accuracy(classifier, x, y) -> float:
    return float((classifier.predict(x).argmax(1) == y).mean())


def art_trainer(name: str, source, x, y, eps: float):
    """One epoch of one of ART's adversarial trainers on a copy of the dense source."""
    trainee = rewrap_classifier(source, clone_module(source.model))
    if name == "madry-pgd":
        trainer = AdversarialTrainerMadryPGD(
            trainee, nb_epochs=1, batch_size=128, eps=eps, eps_step=eps / 4, max_iter=7
        )
        trainer.fit(x, y)
    else:
        trainee.set_params(optimizer=torch.optim.SGD(trainee.model.parameters(), lr=0.01, momentum=0.9))
        one_hot = np.eye(10, dtype=np.float32)[y]  # FBF wants one-hot labels
        AdversarialTrainerFBFPyTorch(trainee, eps=eps).fit(x, one_hot, nb_epochs=1, batch_size=128)
    return trainee


def hardenings(source, compression: float, x, y, x_cal, y_cal, eps: float) -> dict[str, Callable[[], Any]]:
    """Every other method, each one epoch of (hardened) fine-tuning: GAP in three rounds,
    magnitude pruning then transfer adversarial or gradient misalignment fine-tuning, ART's
    ensemble adversarial training and trainers on the dense model (time includes pruning and
    the attacks each crafts)."""

    def spec_of(name: str, rounds: int = 1, seed: int = 0) -> Any:
        return parse_method(
            name,
            compression=compression,
            rounds=rounds,
            finetune=FinetuneSpec(1, seed=seed),
            hardening_attack=AttackSpec(eps=eps),
            seed=seed,
        )

    def method(name: str, rounds: int = 1) -> Callable[[], Any]:
        return lambda: apply_method(spec_of(name, rounds), source, x_cal, y_cal, x, y).classifier

    def pool() -> Any:
        """+pool with a pool of its own: M and one replica of magnitude+tat on another seed,
        whose building is part of the cost."""
        replica = apply_method(spec_of("magnitude+tat", seed=1), source, x_cal, y_cal, x, y).classifier
        spec = spec_of("magnitude+pool")
        return apply_method(spec, source, x_cal, y_cal, x, y, extra_sources=[replica]).classifier

    def ensemble_adv() -> Any:
        return TransferAdversarialFinetuning(source, source, self_attack="fgsm", eps=eps, epochs=1)(x, y=y)

    return {
        "gap-iter (3 rounds)": method("gap-iter", rounds=3),
        "magnitude+tat": method("magnitude+tat"),
        "gap-grad+tat": method("gap-grad+tat"),
        "magnitude+gal": method("magnitude+gal"),
        "magnitude+pool (M + 1 own replica)": pool,
        "ART ensemble-adv (dense)": ensemble_adv,
        "ART madry-pgd (dense)": lambda: art_trainer("madry-pgd", source, x, y, eps),
        "ART fbf (dense)": lambda: art_trainer("fbf", source, x, y, eps),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion-mnist", choices=sorted(SETUPS))
    parser.add_argument("--n-calibration", type=int, default=1024)
    parser.add_argument("--compression", type=float, default=4.0)
    parser.add_argument("--model", default=None, help="default: the dataset's (lenet for fashion-mnist)")
    parser.add_argument("--epochs", type=int, default=None, help="source training epochs")
    args = parser.parse_args()
    name, epochs, n_train = SETUPS[args.dataset]
    name, epochs = args.model or name, args.epochs or epochs
    data = load_dataset(args.dataset, n_train=n_train, n_test=1000)
    torch.manual_seed(0)
    model = create_model(name, data.info.input_shape, data.info.nb_classes)
    train_model(model, data.train, epochs, RECIPES["adam"], progress=False)
    source = to_art_classifier(model, data.info, device="cpu")
    x, y = data.numpy("train")
    xt, yt = data.numpy("test")
    eps = data.info.eps
    x_adv = make_attack("pgd", source, eps=eps, eps_step=eps / 4, seed=0).generate(xt, yt)
    cal = np.random.default_rng(0).choice(len(x), args.n_calibration, replace=False)
    x_cal, y_cal = x[cal], y[cal]

    # bare crafting of GAP's calibration attacks (GAP's own default budget), then GAP
    crafter = make_attack("pgd", source, eps=2 / 255, eps_step=0.001, batch_size=128, seed=None)
    start = time.perf_counter()
    with seeded(0):
        crafter.generate(x_cal, y_cal)
    craft_s = time.perf_counter() - start
    gap = GreedyAdversarialPruning(source, args.compression, nb_calibration=None, finetune_epochs=1, seed=0)
    start = time.perf_counter()
    gap.fit(x_cal, y_cal)
    score_s = time.perf_counter() - start
    pruned = gap(x, y=y)
    gap_s = time.perf_counter() - start

    results = {"gap (grad)": (gap_s, pruned)}
    for method, run in hardenings(source, args.compression, x, y, x_cal, y_cal, eps).items():
        start = time.perf_counter()
        with seeded(0):
            classifier = run()
        results[method] = (time.perf_counter() - start, classifier)

    base_transfer = accuracy(source, x_adv, yt)
    rows, records = [], []
    for method, (seconds, classifier) in results.items():
        transfer = accuracy(classifier, x_adv, yt)
        clean = accuracy(classifier, xt, yt)
        gain = transfer - base_transfer
        records.append(
            {
                "method": method,
                "seconds": seconds,
                "clean_accuracy": clean,
                "transfer_accuracy": transfer,
                "transfer_gain_per_s": gain / seconds,
            }
        )
        rows.append([method, f"{seconds:.1f}", f"{clean:.3f}", f"{transfer:.3f}", f"{gain / seconds:.4f}"])
    overhead = score_s / craft_s - 1
    print(machine())
    print(
        f"{args.dataset}, {name}, {len(x)} training images, PGD eps {eps:g} from the source "
        f"(source transfer accuracy {base_transfer:.3f}); GAP at {args.compression:g}x, "
        f"{args.n_calibration} calibration images\n"
    )
    print(fixed_width_table(["method", "seconds", "clean", "transfer", "transfer gain / s"], rows))
    print(
        f"\nGAP scoring {score_s:.2f} s vs bare crafting of its calibration attacks {craft_s:.2f} s: "
        f"overhead {100 * overhead:.1f}%"
    )
    write_results(
        f"gap_cost_{args.dataset}" + (f"_{name}" if args.model else ""),
        {
            "dataset": args.dataset,
            "model": name,
            "compression": args.compression,
            "n_calibration": args.n_calibration,
            "source_transfer_accuracy": base_transfer,
            "rows": records,
            "gap_scoring_s": score_s,
            "calibration_crafting_s": craft_s,
            "gap_overhead_over_crafting": overhead,
        },
    )


if __name__ == "__main__":
    main()
