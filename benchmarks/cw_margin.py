"""How often CW reaches a confidence margin on the digits CNN: why the bench's CW runs at
kappa 0 by default.

Carlini and Wagner's transfer experiments use a margin (kappa) of about 20 logits. torchattacks'
CW ignores kappa (it keeps the smallest misclassified example), so a margin runs on ART's
CarliniL2Method, which returns an example unchanged where its search fails. This script
measures, per setting, the share of test images CW moves at all, the share that reach the
margin, the accuracy left and the median L2 of the perturbations, on the quick preset's model.

Run: python benchmarks/cw_margin.py [--kappa 20] [--n 200]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from art.attacks.evasion import CarliniL2Method
from common import write_results

from gap_art.classifiers import to_art_classifier
from gap_art.data import load_dataset
from gap_art.evaluation.export import fixed_width_table
from gap_art.models import create_model
from gap_art.training import RECIPES, train_model

SETTINGS = [  # (binary search steps, initial constant, steps)
    (1, 10.0, 50),
    (3, 10.0, 50),
    (5, 1.0, 50),
    (1, 100.0, 50),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kappa", type=float, default=20.0)
    parser.add_argument("--n", type=int, default=200)
    args = parser.parse_args()
    data = load_dataset("digits", seed=0)
    torch.manual_seed(0)
    model = create_model("small-cnn", data.info.input_shape, data.info.nb_classes)
    train_model(model, data.train, 30, RECIPES["adam"], 0, "cpu", False)
    classifier = to_art_classifier(model.eval(), data.info, device="cpu")
    x, y = data.numpy("test")
    x, y = x[: args.n], y[: args.n]
    logits = classifier.predict(x)
    rows = []
    for searches, constant, steps in SETTINGS:
        attack = CarliniL2Method(  # what gap-art's CW with a margin runs (attacks/cw.py), searches varied
            classifier, confidence=args.kappa, learning_rate=0.1, max_iter=steps,
            binary_search_steps=searches, initial_const=constant, batch_size=128, verbose=False,
        )  # fmt: skip
        start = time.perf_counter()
        x_adv = attack.generate(x, y)
        seconds = time.perf_counter() - start
        adv_logits = classifier.predict(x_adv)
        others = np.where(np.eye(data.info.nb_classes, dtype=bool)[y], -np.inf, adv_logits).max(1)
        margin = others - adv_logits[np.arange(len(y)), y]
        size = np.linalg.norm((x_adv - x).reshape(len(x), -1), axis=1)
        rows.append({
            "binary_search_steps": searches, "initial_const": constant, "steps": steps,
            "moved": float((size > 0).mean()), "reached_margin": float((margin >= args.kappa - 1e-3).mean()),
            "accuracy_left": float((adv_logits.argmax(1) == y).mean()), "median_l2": float(np.median(size)),
            "seconds": seconds,
        })  # fmt: skip
    print(f"kappa {args.kappa:g}; mean logit range of the clean images {np.ptp(logits, 1).mean():.1f}")
    print(fixed_width_table(list(rows[0]), [[f"{v:.3g}" for v in r.values()] for r in rows]))
    write_results("cw_margin_digits", {"kappa": args.kappa, "n": args.n, "rows": rows})


if __name__ == "__main__":
    main()
