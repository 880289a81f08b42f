"""GAP's cost and what it buys: wall time of GAP (calibration attacks + scoring + one
fine-tuning epoch) against ART's AdversarialTrainerMadryPGD and AdversarialTrainerFBFPyTorch
for one epoch on the same model and data, and the transfer accuracy (PGD from the source)
each reaches. Also GAP's overhead over bare crafting of its calibration attacks.

Run: python benchmarks/gap_cost.py [--dataset fashion-mnist]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from art.defences.trainer import AdversarialTrainerFBFPyTorch, AdversarialTrainerMadryPGD
from common import machine, write_results

from gap_art.attacks import make_attack
from gap_art.classifiers import rewrap_classifier, to_art_classifier
from gap_art.data import load_dataset
from gap_art.defences import GreedyAdversarialPruning
from gap_art.evaluation.export import fixed_width_table
from gap_art.models import create_model
from gap_art.pruning import clone_module
from gap_art.runtime import seeded
from gap_art.training import RECIPES, train_model

SETUPS = {"digits": ("small-cnn", 30, None), "fashion-mnist": ("lenet", 3, 20000)}


def accuracy(classifier, x, y) -> float:
    return float((classifier.predict(x).argmax(1) == y).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion-mnist", choices=sorted(SETUPS))
    parser.add_argument("--n-calibration", type=int, default=1024)
    parser.add_argument("--compression", type=float, default=4.0)
    args = parser.parse_args()
    name, epochs, n_train = SETUPS[args.dataset]
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

    results = {"gap": (gap_s, pruned)}
    for trainer_name in ("madry-pgd", "fbf"):
        trainee = rewrap_classifier(source, clone_module(source.model))
        start = time.perf_counter()
        with seeded(0):
            if trainer_name == "madry-pgd":
                AdversarialTrainerMadryPGD(
                    trainee, nb_epochs=1, batch_size=128, eps=eps, eps_step=eps / 4, max_iter=7
                ).fit(x, y)
            else:
                trainee.set_params(
                    optimizer=torch.optim.SGD(trainee.model.parameters(), lr=0.01, momentum=0.9)
                )
                AdversarialTrainerFBFPyTorch(trainee, eps=eps).fit(
                    x, np.eye(10, dtype=np.float32)[y], nb_epochs=1, batch_size=128
                )
        results[trainer_name] = (time.perf_counter() - start, trainee)

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
        f"gap_cost_{args.dataset}",
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
