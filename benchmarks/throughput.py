"""Throughput of the bench's arithmetic against this machine's own peak (issue 35, item 3).

Prints, in one run: the float32 matmul peak (and bfloat16's where the CPU has AMX or
avx512_bf16), then images per second for training one epoch, crafting (PGD, MI-FGSM and CW on
one model, PGD on a logit-averaged ensemble of three) and prediction, with lenet-wide and
resnet20-28 on Fashion-MNIST-shaped inputs, run as the bench runs them (gap-art's training loop,
ART classifiers, the bench's attack settings). Each row gives the FLOPs the step performs
(counted by ``torch.utils.flop_counter``) per second as a share of the float32 peak: what the
engine spends on anything but arithmetic is the rest.

With ``--precisions float32,bfloat16`` each step also runs under the study's opt-in bfloat16
precision (CW crafts in float32 whatever the precision: see ``gap_art.attacks.cw``).
With ``--threads 1,2`` each step runs at each torch thread count: against the machine's own
thread count, twice the one-thread rate bounds what two worker processes of one thread each
could reach (issue 35's candidate "worker processes against intra-op threads").

Run on an idle machine (an oversubscribed CPU lies by 10x):
    python benchmarks/throughput.py                 # writes benchmarks/results/throughput.json
    python benchmarks/throughput.py --precisions float32,bfloat16 --out throughput_bfloat16
    python benchmarks/throughput.py --threads 1,2 --out throughput_threads
    python benchmarks/throughput.py --quick         # a few images, lenet-wide only (tests it)
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from common import machine, run_times, write_results
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.data import TensorDataset
from torch.utils.flop_counter import flop_registry

from gap_art.classifiers import pixel_space, to_art_classifier
from gap_art.data import DATASETS
from gap_art.evaluation import craft_examples
from gap_art.evaluation.export import fixed_width_table
from gap_art.evaluation.transfer import PREDICT_BATCH_SIZE
from gap_art.models import EnsembleModule, create_model
from gap_art.models.registry import model_recipe
from gap_art.runtime import computing_precision, native_bfloat16, torch_threads
from gap_art.settings import AttackSpec, default_eps_step
from gap_art.training import RECIPES, train_model

INFO = DATASETS["fashion-mnist"]
EPS = 0.15
"""The harden preset's L-inf budget on Fashion-MNIST."""
IMAGES = {"lenet-wide": 512, "resnet20-28": 64}
"""Images per step: the bench crafts 200 per seed; fewer for ResNet-20, whose CW (50 steps)
otherwise takes minutes a run on 2 cores."""


def matmul_peak(dtype: torch.dtype, size: int, seconds: float) -> float:
    """FLOP/s of square matmuls of ``size`` in ``dtype``, sustained for about ``seconds``."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    torch.mm(a, b)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        torch.mm(a, b)
        done += 1
    return 2 * size**3 * done / (time.perf_counter() - start)


class FlopCount(TorchDispatchMode):
    """The FLOPs of every matmul and convolution run inside the block, by the formulas of
    ``torch.utils.flop_counter`` (whose own ``FlopCounterMode`` tracks modules with hooks that
    ``torch.autograd.grad``, as the attacks call it, does not support)."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.total += formula(*args, **kwargs, out_val=out)
        return out


def measure(step: Callable[[], Any], images: int, repeat: int, precision: str) -> dict[str, float]:
    """Images per second (median of ``repeat`` runs after a warm-up) and the FLOPs of one run,
    at the study's ``precision`` (:func:`gap_art.runtime.computing_precision`)."""
    with computing_precision(precision):
        step()
        with FlopCount() as counter:
            step()
        seconds = float(np.median(run_times(step, repeat)))
    return {"images_per_s": images / seconds, "flops_per_s": counter.total / seconds}


def workloads(arch: str, n: int, seed: int = 0) -> dict[str, Callable[[], Any]]:
    """Each step the bench runs on ``n`` images of ``arch``, by name."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    x = rng.random((n, *INFO.input_shape), dtype=np.float32)
    y = rng.integers(0, INFO.nb_classes, n)
    models = [create_model(arch, INFO.input_shape, INFO.nb_classes).eval() for _ in range(3)]
    single = to_art_classifier(models[0], INFO, device="cpu")
    ensemble = to_art_classifier(EnsembleModule(models), INFO, device="cpu")
    data = TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    recipe = RECIPES[model_recipe(arch)]
    trainee = pixel_space(create_model(arch, INFO.input_shape, INFO.nb_classes), INFO)

    def attack(name: str) -> AttackSpec:
        return AttackSpec(name, "torchattacks", EPS, default_eps_step(EPS), seed=seed)

    return {
        "train (1 epoch)": lambda: train_model(
            pixel_space(trainee, INFO), data, 1, recipe, seed, "cpu", False
        ),
        "craft pgd": lambda: craft_examples(single, x, y, attack("pgd")),
        "craft mifgsm": lambda: craft_examples(single, x, y, attack("mifgsm")),
        "craft cw": lambda: craft_examples(single, x, y, attack("cw")),
        "craft pgd, ensemble of 3": lambda: craft_examples(ensemble, x, y, attack("pgd")),
        "predict": lambda: single.predict(x, batch_size=PREDICT_BATCH_SIZE),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="A few images, lenet-wide only.")
    parser.add_argument("--out", default="throughput", help="Results name under benchmarks/results/.")
    parser.add_argument(
        "--precisions", default="float32", help="Each step at each, comma-separated (float32,bfloat16)."
    )
    parser.add_argument("--threads", help="Each step at each torch thread count, comma-separated (1,2).")
    args = parser.parse_args()
    images = {"lenet-wide": 16} if args.quick else IMAGES
    repeat, seconds = (1, 0.2) if args.quick else (2, 3.0)
    precisions = args.precisions.split(",")
    threads = [int(t) for t in args.threads.split(",")] if args.threads else [torch.get_num_threads()]
    peaks = {"float32": matmul_peak(torch.float32, 1024, seconds)}
    if native_bfloat16(torch.device("cpu")):
        peaks["bfloat16"] = matmul_peak(torch.bfloat16, 1024, seconds)
    rows = []
    for arch, n in images.items():
        for name, step in workloads(arch, n).items():
            for count, precision in itertools.product(threads, precisions):
                with torch_threads(count):
                    result = measure(step, n, repeat, precision)
                share = result["flops_per_s"] / peaks["float32"]
                rows.append({"arch": arch, "step": name, "torch_threads": count, "precision": precision,
                             **result, "share_of_float32_peak": share})  # fmt: skip
    print(", ".join(f"{dtype} matmul peak {flops / 1e9:.1f} GFLOP/s" for dtype, flops in peaks.items()))
    table = [
        [r["arch"], r["step"], str(r["torch_threads"]), r["precision"], f"{r['images_per_s']:.0f}",
         f"{r['flops_per_s'] / 1e9:.2f}", f"{r['share_of_float32_peak']:.1%}"]
        for r in rows
    ]  # fmt: skip
    header = ["arch", "step", "threads", "precision", "images/s", "GFLOP/s", "of fp32 peak"]
    print(fixed_width_table(header, table))
    print(f"machine: {machine()['cpu']}, {machine()['torch_threads']} torch threads")
    if not args.quick:
        write_results(args.out, {"images": images, "peaks_flops_per_s": peaks, "rows": rows})


if __name__ == "__main__":
    main()
