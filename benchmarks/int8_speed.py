"""int8 speed: float eager against int8 eager (the PT2E reference graph) and int8 through
torch.compile (fused int8 kernels where the platform has them). Correctness never depends
on the compiled path; this measures what it buys.

Run: python benchmarks/int8_speed.py [--model lenet]
"""

from __future__ import annotations

import argparse
import time

import torch
from common import best_time, machine, write_results

from gap_art.evaluation.export import fixed_width_table
from gap_art.models import create_model
from gap_art.quantization import compile_int8, quantize_int8

SHAPES = {"small-cnn": (1, 8, 8), "lenet": (1, 28, 28), "resnet20": (3, 32, 32)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lenet", choices=sorted(SHAPES))
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = create_model(args.model, SHAPES[args.model], 10).eval()
    x = torch.rand(args.batch_size, *SHAPES[args.model])
    int8 = quantize_int8(model, torch.rand(512, *SHAPES[args.model]))
    start = time.perf_counter()
    compiled = compile_int8(int8, x)
    compile_s = time.perf_counter() - start
    with torch.no_grad():
        agree = float((compiled(x).argmax(1) == int8(x).argmax(1)).float().mean())
        timings = {
            "float32 eager": best_time(lambda: model(x)),
            "int8 eager": best_time(lambda: int8(x)),
            "int8 torch.compile": best_time(lambda: compiled(x)),
        }
    rows = [[name, f"{s * 1e3:.2f}", f"{args.batch_size / s:.0f}"] for name, s in timings.items()]
    print(machine())
    print(
        f"{args.model}, batch {args.batch_size}; compile took {compile_s:.1f} s; "
        f"compiled and eager int8 agree on {100 * agree:.1f}% of predictions\n"
    )
    print(fixed_width_table(["path", "ms / batch", "examples / s"], rows))
    write_results(
        f"int8_speed_{args.model}",
        {
            "model": args.model,
            "batch_size": args.batch_size,
            "compile_s": compile_s,
            "agreement": agree,
            "seconds_per_batch": timings,
        },
    )


if __name__ == "__main__":
    main()
