"""Attack backends: torchattacks against ART for FGSM, PGD (10 steps) and CW (or the attacks
``--attacks`` names, e.g. ``autoattack``) on the same model, batch and budget: examples per
second, the ratio, and the success rates.

Run: python benchmarks/attack_backends.py [--dataset fashion-mnist] [--attacks autoattack --n 100]
(other attacks than the default three write attack_backends_<dataset>_<attacks>.json)
"""

from __future__ import annotations

import argparse
import time

import torch
from common import machine, write_results

from gap_art.attacks import make_attack
from gap_art.classifiers import to_art_classifier
from gap_art.data import load_dataset
from gap_art.evaluation.export import fixed_width_table
from gap_art.models import create_model
from gap_art.training import RECIPES, train_model

MODELS = {"digits": ("small-cnn", 30), "fashion-mnist": ("lenet", 2)}
ATTACKS = ("fgsm", "pgd", "cw")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits", choices=sorted(MODELS))
    parser.add_argument("--n", type=int, default=400, help="examples attacked")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--attacks", default=",".join(ATTACKS), help="comma-separated attack names")
    args = parser.parse_args()
    data = load_dataset(args.dataset, n_train=10000 if args.dataset != "digits" else None)
    name, epochs = MODELS[args.dataset]
    torch.manual_seed(0)
    model = create_model(name, data.info.input_shape, data.info.nb_classes)
    train_model(model, data.train, epochs, RECIPES["adam"], progress=False)
    classifier = to_art_classifier(model, data.info, device="cpu")
    x, y = data.numpy("test")
    x, y = x[: args.n], y[: args.n]
    clean = classifier.predict(x).argmax(1) == y
    eps = data.info.eps
    rows, records = [], []
    attacks = tuple(args.attacks.split(","))
    for attack in attacks:
        figures = {}
        for backend in ("torchattacks", "art"):
            adapter = make_attack(
                attack,
                classifier,
                backend=backend,
                eps=eps,
                eps_step=eps / 4,
                batch_size=args.batch_size,
                seed=0,
            )
            start = time.perf_counter()
            x_adv = adapter.generate(x, y)
            seconds = time.perf_counter() - start
            fooled = classifier.predict(x_adv).argmax(1) != y
            figures[backend] = {
                "seconds": seconds,
                "examples_per_s": len(x) / seconds,
                "success_rate": float(fooled[clean].mean()),
            }
        ratio = figures["torchattacks"]["examples_per_s"] / figures["art"]["examples_per_s"]
        records.append({"attack": attack, **{k: v for k, v in figures.items()}, "speed_ratio": ratio})
        rows.append(
            [
                attack,
                f"{figures['torchattacks']['examples_per_s']:.0f}",
                f"{figures['art']['examples_per_s']:.0f}",
                f"{ratio:.2f}",
                f"{figures['torchattacks']['success_rate']:.3f}",
                f"{figures['art']['success_rate']:.3f}",
            ]
        )
    print(machine())
    print(
        f"{args.dataset}, {name}, {len(x)} examples, batch {args.batch_size}, eps {eps:g} "
        "(CW: c=10, 50 steps, lr 0.1; ART with one binary-search step)\n"
    )
    print(
        fixed_width_table(
            ["attack", "torchattacks ex/s", "ART ex/s", "speed ratio", "ta success", "ART success"], rows
        )
    )
    suffix = "" if attacks == ATTACKS else "_" + "-".join(attacks)
    write_results(
        f"attack_backends_{args.dataset}{suffix}",
        {
            "dataset": args.dataset,
            "model": name,
            "n": len(x),
            "batch_size": args.batch_size,
            "eps": eps,
            "rows": records,
        },
    )


if __name__ == "__main__":
    main()
