"""Colours and markers, fixed per method name, so a method looks the same in every plot of
every study: the well-known methods by name (:data:`KNOWN_COLOURS`), any other by a hash of its
name into its family's palette, never onto a well-known method's colour (GAP variants in reds
and oranges, the other pruning methods in blues and greys, ART's defences in greens); the dense
model is a black star. Markers: circle for a float model, hollow square for its int8 version (so
both show where they coincide), one marker per ART defence (triangles, diamonds, crosses)."""

from __future__ import annotations

import zlib

GAP_COLOURS = (
    "#d62728",
    "#ff7f0e",
    "#e377c2",
    "#8c564b",
    "#bcbd22",
    "#ff9896",
    "#ad494a",
    "#e7969c",
    "#fdae6b",
)
BASELINE_COLOURS = (
    "#1f77b4",
    "#7f7f7f",
    "#17becf",
    "#393b79",
    "#6baed6",
    "#525252",
    "#637939",
    "#843c39",
    "#7b4173",
)
DEFENCE_COLOURS = ("#2ca02c", "#006d2c", "#74c476", "#31a354", "#a1d99b", "#00441b")
MARKERS = {"baseline": "*", "pruning": "o", "quantization": "s", "art_defence": "^"}
DEFENCE_MARKERS = ("^", "v", "<", ">", "D", "P", "X", "h")
"""One marker per ART defence (its colour alone tells six greens apart badly)."""
KNOWN_DEFENCE_MARKERS = {
    "art:feature-squeezing": "v", "art:spatial-smoothing": "<", "art:jpeg": ">", "art:distillation": "D",
    "art:madry-pgd": "P", "art:fbf": "^", "art:ensemble-adv": "X",
}  # fmt: skip
KNOWN_COLOURS = {
    "dense": "black",
    "gap-grad": "#d62728",
    "gap-taylor": "#ff7f0e",
    "gap-iter": "#e377c2",
    "gap-abs-grad": "#8c564b",
    "random": "#7f7f7f",
    "magnitude": "#1f77b4",
    "taylor": "#aec7e8",
    "activation": "#393b79",
    "gap-grad+tat": "#9467bd",
    "gap-grad+gal": "#8c564b",
    "magnitude+tat": "#6baed6",
    "magnitude+tat-fgsm": "#08306b",
    "magnitude+pool": "#bcbd22",
    "magnitude+pool-fgsm": "#dbdb8d",
    "magnitude+pool-trades": "#8c6d31",
    "random+tat": "#525252",
    "ensemble-adv>magnitude": "#17becf",
    "art:fbf": "#2ca02c",
    "art:ensemble-adv": "#006d2c",
    "art:madry-pgd": "#74c476",
}
"""Colours of the methods most studies run; every other method hashes into its family's palette."""


def _base(method: str) -> str:
    return method.removesuffix("+int8")


def colour(method: str, family: str, adversarial: bool = False) -> str:
    """The colour of ``method`` in every plot of every study (module docstring)."""
    base = _base(method)
    if family == "art_defence" and not base.startswith("art:"):
        base = f"art:{base}"
    if base in KNOWN_COLOURS:
        return KNOWN_COLOURS[base]
    palette = DEFENCE_COLOURS if family == "art_defence" else GAP_COLOURS if adversarial else BASELINE_COLOURS
    free = [c for c in palette if c not in KNOWN_COLOURS.values()] or list(palette)  # never a known one's
    return free[zlib.crc32(base.encode()) % len(free)]


def marker(method: str, family: str) -> str:
    """The marker of ``method`` in every plot: by family, and one per ART defence."""
    if family != "art_defence":
        return "s" if family == "quantization" else MARKERS[family]
    name = method if method.startswith("art:") else f"art:{method}"
    return (
        KNOWN_DEFENCE_MARKERS.get(name) or DEFENCE_MARKERS[zlib.crc32(name.encode()) % len(DEFENCE_MARKERS)]
    )
