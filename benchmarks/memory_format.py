"""Channels-last, or ``torch.compile``, against the model as the bench runs it, per architecture
(issue 35, item 3: candidates for speed that change no arithmetic, only the order of float sums).

For each architecture the bench trains, on its dataset's input shape: one epoch of gap-art's
training loop, PGD crafted as the bench crafts it (an ART classifier, torchattacks, the study's
eps) and prediction, each timed with the model as it is (PyTorch's default layout, eager) and
as the variant (its 4-D weights in channels-last, or compiled by ``torch.compile``'s default
inductor backend), in one process, alternating, medians over repeats after a first call of
each (which for ``compiled`` is its compile time, recorded); and how far the two versions' PGD
examples and logits differ. A ratio above 1 is the variant's speed-up.

Run on an idle machine (an oversubscribed CPU lies by 10x):
    python benchmarks/memory_format.py           # writes benchmarks/results/memory_format.json
    python benchmarks/memory_format.py --variant compiled   # writes results/torch_compile.json
    python benchmarks/memory_format.py --quick   # a few images, small-cnn only (tests it)
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable
from typing import Any, cast

import numpy as np
import torch
from common import run_times, write_results
from torch.utils.data import TensorDataset

from gap_art.classifiers import pixel_space, to_art_classifier
from gap_art.data import DATASETS
from gap_art.evaluation import craft_examples
from gap_art.evaluation.export import fixed_width_table
from gap_art.models import create_model
from gap_art.models.registry import model_recipe
from gap_art.settings import AttackSpec, default_eps_step
from gap_art.training import RECIPES, train_model

ARCHS = {
    "small-cnn": "digits",
    "lenet": "fashion-mnist",
    "lenet-wide": "fashion-mnist",
    "resnet20-28": "fashion-mnist",
}
"""Each architecture on the data the presets give it."""
EPS = 0.15
VARIANTS: dict[str, Callable[[torch.nn.Module], torch.nn.Module]] = {
    "channels-last": lambda model: model.to(memory_format=torch.channels_last),
    "compiled": lambda model: cast(torch.nn.Module, torch.compile(model)),
}
"""Each variant of a model (a copy of it) measured against the model as it is."""
RESULT_FILES = {"channels-last": "memory_format", "compiled": "torch_compile"}


def column(variant: str) -> str:
    """The prefix of a variant's fields in a row (``channels_last`` of ``channels_last_s``)."""
    return variant.replace("-", "_")


def steps(arch: str, images: int) -> dict[str, Callable[[torch.nn.Module], Any]]:
    """The bench's three steps on ``images`` random inputs of ``arch``'s data, each a function
    of the model (in the layout under test) returning what it computed."""
    info = DATASETS[ARCHS[arch]]
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(images, *info.input_shape, generator=generator)
    y = torch.randint(0, info.nb_classes, (images,), generator=generator)
    attack = AttackSpec("pgd", "torchattacks", EPS, default_eps_step(EPS), seed=0)

    def train(model: torch.nn.Module) -> Any:
        recipe = RECIPES[model_recipe(arch)]
        return train_model(pixel_space(model, info), TensorDataset(x, y), 1, recipe, 0, "cpu", False)

    def craft(model: torch.nn.Module) -> np.ndarray:
        return craft_examples(to_art_classifier(model, info, device="cpu"), x.numpy(), y.numpy(), attack)

    def predict(model: torch.nn.Module) -> np.ndarray:
        return to_art_classifier(model, info, device="cpu").predict(x.numpy(), batch_size=1024)

    return {"train (1 epoch)": train, "craft pgd": craft, "predict": predict}


def measure(arch: str, images: int, repeat: int, variant: str = "channels-last") -> list[dict[str, Any]]:
    """Median seconds of each step as the model is and as ``variant`` (alternating, after a
    first call of both), the ratio, the variant's first call, and the largest difference between
    the two outputs of the step."""
    info = DATASETS[ARCHS[arch]]
    torch.manual_seed(0)
    base = create_model(arch, info.input_shape, info.nb_classes).eval()
    versions: dict[str, Callable[[torch.nn.Module], torch.nn.Module]] = {
        "default": lambda model: model,
        variant: VARIANTS[variant],
    }
    key = column(variant)
    rows = []
    for step, run in steps(arch, images).items():
        outputs, first = {}, {}
        for name, version in versions.items():
            start = time.perf_counter()
            outputs[name] = run(version(copy.deepcopy(base)))
            first[name] = time.perf_counter() - start
        times: dict[str, list[float]] = {name: [] for name in versions}
        for _ in range(repeat):
            for name, version in versions.items():
                times[name] += run_times(lambda v=version, r=run: r(v(copy.deepcopy(base))), 1)
        medians = {name: statistics.median(values) for name, values in times.items()}
        difference = float(np.max(np.abs(np.asarray(outputs["default"]) - np.asarray(outputs[variant]))))
        rows.append({
            "arch": arch, "step": step, "images": images,
            "default_s": medians["default"], f"{key}_s": medians[variant],
            "speedup": medians["default"] / medians[variant], "max_abs_difference": difference,
            f"{key}_first_call_s": first[variant],
        })  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", choices=list(VARIANTS), default="channels-last", help="what to measure")
    parser.add_argument("--archs", default=",".join(ARCHS), help="comma-separated architectures")
    parser.add_argument("--quick", action="store_true", help="a few images, small-cnn only (for the tests)")
    args = parser.parse_args()
    archs, images, repeat = (["small-cnn"], 16, 1) if args.quick else (args.archs.split(","), 512, 5)
    if unknown := [arch for arch in archs if arch not in ARCHS]:
        parser.error(f"--archs: unknown {unknown}, choose from {list(ARCHS)}")
    rows = [
        row
        for arch in archs
        for row in measure(arch, 64 if arch == "resnet20-28" else images, repeat, args.variant)
    ]
    key = column(args.variant)
    print(fixed_width_table(
        ("arch", "step", "images", "default (s)", f"{args.variant} (s)", "speed-up", "its first call (s)",
         "max |difference|"),
        [(r["arch"], r["step"], r["images"], f"{r['default_s']:.3f}", f"{r[f'{key}_s']:.3f}",
          f"{r['speedup']:.2f}x", f"{r[f'{key}_first_call_s']:.1f}", f"{r['max_abs_difference']:.1e}")
         for r in rows],
    ))  # fmt: skip
    if not args.quick:
        results = {"variant": args.variant, "torch_threads": torch.get_num_threads(), "rows": rows}
        write_results(RESULT_FILES[args.variant], results)


if __name__ == "__main__":
    main()
