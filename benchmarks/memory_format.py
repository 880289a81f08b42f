"""Channels-last against the default layout, per architecture (issue 35, item 3: a candidate
for speed that changes no arithmetic, only the order of float sums).

For each architecture the bench trains, on its dataset's input shape: one epoch of gap-art's
training loop, PGD crafted as the bench crafts it (an ART classifier, torchattacks, the study's
eps) and prediction, each timed with the model's 4-D weights in PyTorch's default layout and in
channels-last, in one process, alternating, medians over repeats; and how far the two layouts'
PGD examples and logits differ. A ratio above 1 is channels-last's speed-up.

Run on an idle machine (an oversubscribed CPU lies by 10x):
    python benchmarks/memory_format.py           # writes benchmarks/results/memory_format.json
    python benchmarks/memory_format.py --quick   # a few images, small-cnn only (tests it)
"""

from __future__ import annotations

import argparse
import copy
import statistics
from collections.abc import Callable
from typing import Any

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
LAYOUTS = {"default": torch.contiguous_format, "channels-last": torch.channels_last}


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


def measure(arch: str, images: int, repeat: int) -> list[dict[str, Any]]:
    """Median seconds of each step in each layout (alternating, after a warm-up of both), the
    ratio, and the largest difference between the layouts' outputs of the step."""
    info = DATASETS[ARCHS[arch]]
    torch.manual_seed(0)
    base = create_model(arch, info.input_shape, info.nb_classes).eval()
    rows = []
    for step, run in steps(arch, images).items():
        models = {name: copy.deepcopy(base).to(memory_format=layout) for name, layout in LAYOUTS.items()}
        outputs = {name: run(copy.deepcopy(model)) for name, model in models.items()}  # warm-up
        times: dict[str, list[float]] = {name: [] for name in LAYOUTS}
        for _ in range(repeat):
            for name, model in models.items():
                times[name] += run_times(lambda m=model, r=run: r(copy.deepcopy(m)), 1)
        medians = {name: statistics.median(values) for name, values in times.items()}
        difference = float(
            np.max(np.abs(np.asarray(outputs["default"]) - np.asarray(outputs["channels-last"])))
        )
        rows.append({
            "arch": arch, "step": step, "images": images,
            "default_s": medians["default"], "channels_last_s": medians["channels-last"],
            "speedup": medians["default"] / medians["channels-last"], "max_abs_difference": difference,
        })  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few images, small-cnn only (for the tests)")
    args = parser.parse_args()
    archs, images, repeat = (["small-cnn"], 16, 1) if args.quick else (list(ARCHS), 512, 5)
    rows = [row for arch in archs for row in measure(arch, 64 if arch == "resnet20-28" else images, repeat)]
    print(fixed_width_table(
        ("arch", "step", "images", "default (s)", "channels-last (s)", "speed-up", "max |difference|"),
        [(r["arch"], r["step"], r["images"], f"{r['default_s']:.3f}", f"{r['channels_last_s']:.3f}",
          f"{r['speedup']:.2f}x", f"{r['max_abs_difference']:.1e}") for r in rows],
    ))  # fmt: skip
    if not args.quick:
        write_results("memory_format", {"torch_threads": torch.get_num_threads(), "rows": rows})


if __name__ == "__main__":
    main()
