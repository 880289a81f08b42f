"""Which compression runs faster (issue 38, item 3): inference at batch 1 and 256 and one training
step of the dense model, the same model irregularly pruned at 4x (magnitude, masks folded into
the weights) and channel-pruned at 2x and 4x (L2, a smaller model), float32 eager and int8
eager (the PT2E graph the bench evaluates), as medians over repeated runs in one process and as
ratios to the dense model (above 1: faster), every step taking turns in each round. Weights are
freshly initialised: speed does not depend on what they learned.

Run on an idle machine (an oversubscribed CPU lies by 10x):
    python benchmarks/structured_speed.py             # writes benchmarks/results/structured_speed.json
    python benchmarks/structured_speed.py --quick     # small-cnn, few repeats (tests it)
"""

from __future__ import annotations

import argparse
import copy
import statistics
from collections.abc import Callable
from typing import Any

import torch
from common import run_times, write_results

from gap_art.models import create_model
from gap_art.pruning import magnitude_scores, make_permanent, prunable_parameters, prune_by_scores
from gap_art.pruning.structured import prune_channels
from gap_art.quantization import quantize_int8

SHAPES = {"lenet-wide": (1, 28, 28), "resnet20-28": (1, 28, 28), "small-cnn": (1, 8, 8)}


def variants(arch: str) -> dict[str, torch.nn.Module]:
    """The dense model and its compressed versions, each a separate ``nn.Module``."""
    shape = SHAPES[arch]
    torch.manual_seed(0)
    dense = create_model(arch, shape, 10).eval()
    irregular = copy.deepcopy(dense)
    targets = prunable_parameters(irregular)
    prune_by_scores(irregular, magnitude_scores(targets), 4.0, targets)
    found = {"dense": dense, "irregular 4x": make_permanent(irregular)}
    for ratio in (2.0, 4.0):
        channel = copy.deepcopy(dense)
        prune_channels(channel, torch.zeros(1, *shape), "l2", ratio)
        found[f"channel {ratio:g}x"] = channel
    return found


def alternating_medians(
    steps: dict[tuple[str, str], Callable[[], Any]], repeat: int
) -> dict[tuple[str, str], float]:
    """The median seconds of each step, the steps taking turns in every round (after one warm-up
    round), so that a drift of the machine's speed hits them all alike."""
    times: dict[tuple[str, str], list[float]] = {key: [] for key in steps}
    for round_ in range(repeat + 1):
        for key, step in steps.items():
            seconds = run_times(step, 1)[0]
            if round_:
                times[key].append(seconds)
    return {key: statistics.median(values) for key, values in times.items()}


def training_step(model: torch.nn.Module, x: torch.Tensor) -> Callable[[], None]:
    trainee = copy.deepcopy(model).train()
    optimizer = torch.optim.SGD(trainee.parameters(), lr=0.01)
    y = torch.zeros(len(x), dtype=torch.long)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(trainee(x), y).backward()
        optimizer.step()

    return step


def measure(arch: str, repeat: int, batch: int) -> list[dict[str, Any]]:
    shape = SHAPES[arch]
    one, many = torch.rand(1, *shape), torch.rand(batch, *shape)
    steps: dict[tuple[str, str], Callable[[], Any]] = {}
    nonzero: dict[str, int] = {}
    for name, model in variants(arch).items():
        int8 = quantize_int8(model, torch.rand(256, *shape))
        steps[name, "float32 batch 1"] = lambda m=model: _predict(m, one)
        steps[name, f"float32 batch {batch}"] = lambda m=model: _predict(m, many)
        steps[name, "int8 batch 1"] = lambda q=int8: _predict(q, one)
        steps[name, f"int8 batch {batch}"] = lambda q=int8: _predict(q, many)
        steps[name, f"float32 train step, batch {batch}"] = training_step(model, many)
        nonzero[name] = sum(int(torch.count_nonzero(p)) for p in model.parameters())
    medians = alternating_medians(steps, repeat)
    return [
        {"arch": arch, "model": name, "step": step, "seconds": seconds, "nonzero_parameters": nonzero[name],
         "speedup_over_dense": medians["dense", step] / seconds}
        for (name, step), seconds in medians.items()
    ]  # fmt: skip


def _predict(model: Any, x: torch.Tensor) -> None:
    with torch.no_grad():
        model(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small-cnn, 3 repeats, batch 16")
    parser.add_argument("--repeat", type=int, default=21)
    args = parser.parse_args()
    archs, repeat, batch = (
        (["small-cnn"], 3, 16) if args.quick else (["lenet-wide", "resnet20-28"], args.repeat, 256)
    )
    rows = [row for arch in archs for row in measure(arch, repeat, batch)]
    for row in rows:
        print(f"{row['arch']:12s} {row['model']:13s} {row['step']:30s} {row['seconds'] * 1e3:9.2f} ms "
              f"{row['speedup_over_dense']:6.2f}x")  # fmt: skip
    if not args.quick:
        write_results("structured_speed", {"repeat": repeat, "batch": batch, "rows": rows})


if __name__ == "__main__":
    main()
