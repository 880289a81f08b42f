"""Research claims the test suite used to assert, measured instead of asserted.

A unit test asserts behaviour; whether GAP's model resists PGD from the dense model better
than magnitude pruning's is a finding, which may flip on another CPU (float sums in another
order) or another seed. This script measures each claim on digits, for every seed asked, and
writes the numbers: ``benchmarks/results/claims.json``. Nothing here fails a build.

- ``gap_vs_magnitude_library``: the transformers (``GreedyAdversarialPruning`` against
  ``IrregularPruning`` at 4x, 5 fine-tuning epochs): PGD from the source at eps 0.2, accuracy
  on the test split (was ``tests/test_pruning.py``: GAP ahead by more than 0.1).
- ``gap_vs_magnitude_bench``: the same comparison through the bench, on the quick preset's
  small study (was ``tests/test_bench.py``).
- ``tat_vs_magnitude_bench``: ``magnitude+tat`` against ``magnitude`` at 4x under PGD from the
  dense model (was ``tests/test_hardening.py``).

Run: python benchmarks/claims.py [--seeds 0,1,2]
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from common import write_results

from gap_art.attacks import make_attack
from gap_art.bench import preset, run
from gap_art.classifiers import to_art_classifier
from gap_art.data import load_dataset
from gap_art.defences import GreedyAdversarialPruning, IrregularPruning
from gap_art.models import create_model
from gap_art.training import RECIPES, train_model


def library_claim(seed: int) -> dict[str, float]:
    """GAP's and magnitude's transformers on one digits CNN trained with ``seed``."""
    import torch

    digits = load_dataset("digits")
    torch.manual_seed(seed)
    model = create_model("small-cnn", digits.info.input_shape, digits.info.nb_classes)
    train_model(model, digits.train, 30, RECIPES["adam"], seed=seed, device="cpu", progress=False)
    classifier = to_art_classifier(model.eval(), digits.info, device="cpu")
    (x, y), (xt, yt) = digits.numpy("train"), digits.numpy("test")
    adv = make_attack("pgd", classifier, eps=0.2, eps_step=0.05, seed=seed).generate(xt, yt)
    gap = GreedyAdversarialPruning(classifier, 4.0, finetune_epochs=5, seed=seed)(x, y=y)
    magnitude = IrregularPruning(classifier, 4.0, finetune_epochs=5, seed=seed)(x, y=y)
    return {
        "gap_transfer": float((gap.predict(adv).argmax(1) == yt).mean()),
        "magnitude_transfer": float((magnitude.predict(adv).argmax(1) == yt).mean()),
        "gap_clean": float((gap.predict(xt).argmax(1) == yt).mean()),
    }


def bench_claims(seed: int) -> dict[str, float]:
    """Transfer accuracy under PGD from the dense model of the bench's 4x targets."""
    config = replace(
        preset("quick"), methods=["gap-grad", "magnitude", "magnitude+tat"], compression=[4.0],
        attacks=["pgd"], defences=[], int8=False, n_test=200, finetune_epochs=2, seeds=[seed],
        sanity_checks=False,
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        rows = run(config, out=Path(folder), progress=False).rows
    cells = {r["target"]: r["transfer_accuracy"] for r in rows if r["threat_model"] == "dense"}
    return {
        name.split("@")[0]: float(cells[name]) for name in ("gap-grad@4x", "magnitude@4x", "magnitude+tat@4x")
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    seeds = [int(s) for s in parser.parse_args().seeds.split(",")]
    per_seed: dict[str, Any] = {}
    for seed in seeds:
        library, bench = library_claim(seed), bench_claims(seed)
        per_seed[str(seed)] = {"library": library, "bench": bench}
        print(
            f"seed {seed}: library GAP {library['gap_transfer']:.3f} vs magnitude "
            f"{library['magnitude_transfer']:.3f}; bench gap-grad {bench['gap-grad']:.3f}, magnitude "
            f"{bench['magnitude']:.3f}, magnitude+tat {bench['magnitude+tat']:.3f}"
        )
    claims = {
        "gap_vs_magnitude_library": sum(
            s["library"]["gap_transfer"] > s["library"]["magnitude_transfer"] + 0.1 for s in per_seed.values()
        ),
        "gap_vs_magnitude_bench": sum(
            s["bench"]["gap-grad"] > s["bench"]["magnitude"] for s in per_seed.values()
        ),
        "tat_vs_magnitude_bench": sum(
            s["bench"]["magnitude+tat"] > s["bench"]["magnitude"] for s in per_seed.values()
        ),
    }
    print("seeds where each claim holds, of", len(seeds), claims)
    write_results("claims", {"seeds": seeds, "per_seed": per_seed, "seeds_holding": claims})


if __name__ == "__main__":
    main()
