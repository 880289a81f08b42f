"""Choose ``+pool-trades``' beta before its study, on validation rows only.

One seed of the pool ablations' setting (lenet-wide on 1,500 Fashion-MNIST training images,
magnitude pruning at 4x, eps 0.15): the dense parent is the pool's one source (the bench adds
replicas, an independent and a robust model; the choice of beta is about the white-box term,
which they do not touch), and each candidate hardening is trained for a few epochs and scored
on validation rows no model trains on: clean accuracy, white-box PGD and PGD from the parent.
Test rows are never read, so the study that follows still scores its choice on unseen rows.

Run: python benchmarks/trades_beta.py [--betas 1,6] [--epochs 2,5] [--seed 0]
Writes benchmarks/results/trades_beta.json.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from art.estimators.classification import PyTorchClassifier
from common import write_results

from gap_art.attacks import AttackSpec, build_attack
from gap_art.classifiers import to_art_classifier
from gap_art.data import load_dataset
from gap_art.defences import IrregularPruning, TransferHardening
from gap_art.defences.hardening import accuracy
from gap_art.defences.methods import HARDENINGS
from gap_art.models import create_model
from gap_art.training import RECIPES, train_model

EPS = 0.15
N_TRAIN, N_VALIDATION = 1500, 500


def scores(
    model: PyTorchClassifier, parent: PyTorchClassifier, x: np.ndarray, y: np.ndarray
) -> dict[str, float]:
    """Clean, white-box PGD and PGD-from-the-parent accuracy of ``model`` on ``(x, y)``."""
    pgd = AttackSpec("pgd", eps=EPS, seed=0)
    return {
        "clean": accuracy(model, x, y),
        "whitebox_pgd": accuracy(model, build_attack(pgd, model).generate(x, y), y),
        "pgd_from_parent": accuracy(model, build_attack(pgd, parent).generate(x, y), y),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--betas", default="1,6", help="TRADES weights to try (comma-separated)")
    parser.add_argument("--epochs", default="2,5", help="hardening epochs to score (comma-separated)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data = load_dataset("fashion-mnist", n_train=N_TRAIN, seed=args.seed, validation_fraction=0.5)
    x, y = data.numpy("train")
    x_val, y_val = (part[:N_VALIDATION] for part in data.numpy("validation"))
    torch.manual_seed(args.seed)
    model = create_model("lenet-wide", data.info.input_shape, data.info.nb_classes)
    train_model(model, data.train, 6, RECIPES["adam"], seed=args.seed, device="cpu", progress=False)
    parent = to_art_classifier(model.eval(), data.info, device="cpu")
    pruned = IrregularPruning(parent, criterion="magnitude", compression=4.0, seed=args.seed)(x, y=y)
    candidates: list[tuple[str, TransferHardening]] = [
        ("pool-fgsm", HARDENINGS.get("pool-fgsm")(pruned, parent, eps=EPS, seed=args.seed))
    ]
    for beta in (float(b) for b in args.betas.split(",")):
        hardening = HARDENINGS.get("pool-trades")(pruned, parent, eps=EPS, seed=args.seed, trades_beta=beta)
        candidates.append((f"pool-trades beta {beta:g}", hardening))
    rows = [{"method": "dense", "epochs": 0, **scores(parent, parent, x_val, y_val)}]
    rows.append({"method": "magnitude@4x", "epochs": 0, **scores(pruned, parent, x_val, y_val)})
    for name, hardening in candidates:
        for epochs in (int(e) for e in args.epochs.split(",")):
            start = time.perf_counter()
            hardening.set_params(epochs=epochs)
            hardened = hardening(x, y=y)
            seconds = time.perf_counter() - start
            rows.append(
                {
                    "method": name,
                    "epochs": epochs,
                    "seconds": seconds,
                    **scores(hardened, parent, x_val, y_val),
                }
            )
            print({k: round(v, 3) if isinstance(v, float) else v for k, v in rows[-1].items()}, flush=True)
    write_results(
        "trades_beta",
        {"seed": args.seed, "eps": EPS, "n_train": N_TRAIN, "n_validation": N_VALIDATION, "rows": rows},
    )


if __name__ == "__main__":
    main()
