"""Write a small ImageFolder tree (three kinds of texture, 24x24 RGB PNGs) to the folder named
on the command line: images/train/<class>/*.png and images/test/<class>/*.png."""

import sys
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ("stripes", "columns", "checks")


def texture(kind: str, rng: np.random.Generator) -> np.ndarray:
    rows, cols = np.mgrid[0:24, 0:24]
    period = rng.integers(3, 6)
    phase = rng.integers(0, period)
    pattern = {
        "stripes": (rows + phase) // period % 2,
        "columns": (cols + phase) // period % 2,
        "checks": ((rows + phase) // period + (cols + phase) // period) % 2,
    }[kind]
    colour = rng.uniform(0.4, 1.0, size=3)
    image = pattern[..., None] * colour + rng.normal(0, 0.15, size=(24, 24, 3))
    return (np.clip(image, 0, 1) * 255).astype(np.uint8)


def main(root: Path) -> None:
    rng = np.random.default_rng(0)
    for split, count in (("train", 60), ("test", 20)):
        for kind in CLASSES:
            folder = root / split / kind
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                Image.fromarray(texture(kind, rng)).save(folder / f"{i:03d}.png")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
