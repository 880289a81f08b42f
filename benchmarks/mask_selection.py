"""Mask selection: gap-art's exact top/bottom-k (torch.kthvalue + seeded tie-break) against
the straightforward reference (copy scores to numpy, np.quantile, threshold each layer).

Run: python benchmarks/mask_selection.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from common import best_time, machine, write_results

from gap_art.evaluation.export import fixed_width_table
from gap_art.pruning import select_removed

SIZES = {"resnet20": 272_474, "resnet56": 855_770, "resnet18": 11_689_512}


def reference_removed(layers: list[torch.Tensor], fraction: float) -> list[np.ndarray]:
    """Copy to host, one global quantile, threshold every layer (ties all fall one way)."""
    flat = np.concatenate([layer.cpu().numpy().ravel() for layer in layers])
    threshold = np.quantile(flat, fraction)
    return [layer.cpu().numpy() <= threshold for layer in layers]


def ours_removed(layers: list[torch.Tensor], n_remove: int, seed: int = 0) -> torch.Tensor:
    flat = torch.cat([layer.flatten() for layer in layers])
    return select_removed(flat, n_remove, largest=False, generator=torch.Generator().manual_seed(seed))


def split_layers(scores: torch.Tensor, n_layers: int = 20) -> list[torch.Tensor]:
    return list(scores.tensor_split(n_layers))


def gap_scoring_seconds(n: int = 256) -> float:
    """GAP's scoring on ResNet-20 (PGD-10 on n CIFAR-shaped images, one backward a batch)."""
    from gap_art.classifiers import to_art_classifier
    from gap_art.data import dataset_info
    from gap_art.defences import GreedyAdversarialPruning
    from gap_art.models import create_model

    torch.manual_seed(0)
    model = create_model("resnet20", (3, 32, 32), 10)
    classifier = to_art_classifier(model, dataset_info("cifar10"), device="cpu")
    x = np.random.default_rng(0).random((n, 3, 32, 32), dtype=np.float32)
    y = np.random.default_rng(1).integers(0, 10, n)
    gap = GreedyAdversarialPruning(classifier, 4.0, batch_size=128)
    start = time.perf_counter()
    gap.fit(x, y)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compression", type=float, default=4.0)
    parser.add_argument("--levels", type=int, default=256, help="distinct score values (ties)")
    args = parser.parse_args()
    fraction = 1 - 1 / args.compression
    rows, records = [], []
    for name, size in SIZES.items():
        generator = torch.Generator().manual_seed(0)
        scores = torch.randint(0, args.levels, (size,), generator=generator).float()
        layers = split_layers(scores)
        n_remove = size - round(size / args.compression)
        t_ours = best_time(lambda layers=layers, n=n_remove: ours_removed(layers, n))
        t_ref = best_time(lambda layers=layers: reference_removed(layers, fraction))
        exact_ours = int(ours_removed(layers, n_remove).sum()) == n_remove
        exact_ref = int(sum(m.sum() for m in reference_removed(layers, fraction))) == n_remove
        records.append(
            {
                "model": name,
                "n_weights": size,
                "n_remove": n_remove,
                "ours_s": t_ours,
                "reference_s": t_ref,
                "ratio": t_ours / t_ref,
                "ours_exact": exact_ours,
                "reference_exact": exact_ref,
            }
        )
        rows.append(
            [
                name,
                size,
                f"{t_ours * 1e3:.1f}",
                f"{t_ref * 1e3:.1f}",
                f"{t_ours / t_ref:.2f}",
                exact_ours,
                exact_ref,
            ]
        )
    gap_s = gap_scoring_seconds()
    resnet20 = records[0]["ours_s"]
    print(machine())
    print(f"scores with {args.levels} distinct values, compression {args.compression:g}x\n")
    print(
        fixed_width_table(
            ["scores like", "weights", "ours ms", "numpy ms", "ratio", "ours exact", "numpy exact"], rows
        )
    )
    print(
        f"\nGAP scoring on ResNet-20 (256 images, PGD-10): {gap_s:.1f} s; "
        f"selection is {100 * resnet20 / gap_s:.3f}% of it"
    )
    write_results(
        "mask_selection",
        {
            "compression": args.compression,
            "levels": args.levels,
            "rows": records,
            "gap_scoring_resnet20_s": gap_s,
            "selection_share_of_gap": resnet20 / gap_s,
        },
    )


if __name__ == "__main__":
    main()
