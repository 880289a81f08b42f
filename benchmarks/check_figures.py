"""Every figure quoted in the documentation comes from a committed results file.

A figure is a decimal number in prose or a table (``0.847``, ``+0.093``, ``4.2``), outside
code. Each section (the text under a heading) that quotes figures must cite where they come
from: a path under ``benchmarks/results/`` (a study folder, or a JSON file), written out or as
a link (in the section or its heading). Each figure must then appear in one of the cited
files (a folder's report.md, results.json and its other text files), as written or as a
number that rounds to it at its precision, its sign aside. Prints each figure it cannot
find and exits 1 if there is any.

Run: python benchmarks/check_figures.py [FILE.md ...]   (default: README.md, benchmarks/README.md, docs/)
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
FIGURE = re.compile(r"(?<![\w.\-/])[-+−]?(\d+\.\d+)(?![\d.]*\d)(?!\w)")
NUMBER = re.compile(r"-?\d+\.\d+(?:[eE][-+]?\d+)?")
CITATION = re.compile(r"(?:benchmarks/)?results/[\w.\-/]+")
TEXT_SUFFIXES = (".md", ".json", ".txt", ".csv")


@dataclass(frozen=True)
class Missing:
    """A figure that none of its section's cited files holds."""

    document: Path
    section: str
    figure: str
    cited: tuple[str, ...]

    def __str__(self) -> str:
        where = ", ".join(self.cited) or "no results file cited"
        name = self.document.relative_to(ROOT) if self.document.is_relative_to(ROOT) else self.document
        return f"{name} [{self.section}]: {self.figure} not found in {where}"


def sections(text: str) -> list[tuple[str, str, list[str]]]:
    """``(heading, prose, citations)`` per section: the prose without code (fenced blocks and
    inline spans), and the results paths cited in its heading, prose or inline code."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    parts = re.split(r"^(#{1,6} .*)$", text, flags=re.M)
    raw = [("(top)", parts[0])] + [
        (parts[i].lstrip("# ").strip(), parts[i + 1]) for i in range(1, len(parts), 2)
    ]
    found = []
    for heading, body in raw:
        prose = re.sub(r"`[^`]+`", "", body)  # inline code may wrap across lines
        found.append((heading, prose, list(dict.fromkeys(CITATION.findall(heading + "\n" + body)))))
    return found


def holds(text: str, figure: str) -> bool:
    """Whether ``text`` holds ``figure`` as written, or a number that rounds to it at its
    precision (JSON keeps full floats; prose rounds them)."""
    if figure in text:
        return True
    places = len(figure.split(".")[1])
    target = float(figure)
    return any(round(abs(float(value)), places) == target for value in NUMBER.findall(text))


def cited_text(citation: str) -> str | None:
    """The text of a cited results folder or file (``None``: it is not committed)."""
    path = RESULTS / citation.split("results/", 1)[1].rstrip("/.)")
    if path.is_file():
        return path.read_text(errors="replace")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in TEXT_SUFFIXES and p.is_file())
        return "\n".join(p.read_text(errors="replace") for p in files)
    return None


def check_document(document: Path) -> list[Missing]:
    """The figures of ``document`` that its sections' citations do not hold."""
    missing = []
    for heading, prose, cited in sections(document.read_text()):
        texts = [t for c in cited if (t := cited_text(c)) is not None]
        for figure in dict.fromkeys(m.group(1) for m in FIGURE.finditer(prose)):
            if not any(holds(text, figure) for text in texts):
                missing.append(Missing(document, heading, figure, tuple(cited)))
    return missing


def default_documents() -> list[Path]:
    docs = sorted((ROOT / "docs").rglob("*.md")) if (ROOT / "docs").is_dir() else []
    return [ROOT / "README.md", ROOT / "benchmarks" / "README.md", *docs]


def main(argv: list[str] | None = None) -> int:
    documents = [
        Path(a).resolve() for a in (argv if argv is not None else sys.argv[1:])
    ] or default_documents()
    missing = [m for document in documents for m in check_document(document)]
    for m in missing:
        print(m)
    count = sum(len(FIGURE.findall(prose)) for d in documents for _, prose, _ in sections(d.read_text()))
    print(f"{count} figures in {len(documents)} documents; {len(missing)} not found in a cited results file")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
