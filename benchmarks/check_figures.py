r"""Every figure quoted in the documentation is bound to the results it comes from.

Two bindings are exact, and a one-digit change to a figure they bind, or to the results behind
it, fails the check:

- **Generated blocks**, written from a committed study's results.json by gap-art's own report
  code, between ``<!-- generated from benchmarks/results/FOLDER: WHAT -->`` and
  ``<!-- end generated -->``. WHAT is ``bottom line``, ``verdict`` (the bottom line and the
  verdict, quoted), ``section "HEADING"`` (that section of the report, its plots left out) or
  ``goal "FILE"`` (``gap-art report --goal FILE``'s check, FILE from the repository's root).
  ``--write`` rewrites every block from its results; the check renders each again and compares
  it character by character.
- **Bound figures** in prose: a number followed by ``<!-- bind FOLDER | TARGET | ATTACK from
  ATTACKER | METRIC -->`` (the metric's mean over the study's seeds at its nominal eps; add
  ``| seed N`` for one seed, ``| low`` or ``| high`` for the ends of the report's 95% t
  interval), or ``<!-- bind FOLDER | primary | COMPARISON | FIELD -->`` (a
  field of a primary comparison, e.g. ``mean_difference`` or ``p_holm``), or ``<!-- bind
  FOLDER | goal | GOAL.toml | METHOD | CLAUSE -->`` (what ``gap-art report --goal`` measures
  for the method's clause that begins with CLAUSE), or, for a benchmark
  script's JSON, ``<!-- bind FILE.json | KEY | ... -->`` (FILE under ``benchmarks/results/``;
  each KEY a field, a list index, or ``FIELD=VALUE`` for the list entry whose FIELD is VALUE:
  ``rows | method=magnitude+tat | seconds_per_epoch``), or, for a text file a run wrote (a
  ``wall_time.txt``), ``<!-- bind FILE.txt | LABEL -->`` (the first number after LABEL's first
  occurrence in it; ``| N`` for the N-th number of that line), or ``<!-- bind FOLDER | noise
  from OTHER | STATISTIC -->`` (what a rerun ``OTHER`` changed in FOLDER's cells, over the
  cells both hold: ``median`` or ``largest`` of the absolute change in transfer accuracy), or,
  for a setting of a goal or a
  study's config, ``<!-- bind benchmarks/goals/FILE.toml | KEY | ... -->`` (the TOML file from
  the repository's root, keys as for JSON: ``frontier | 0.05``). Either side of ``A minus B``
  may be any of these or a number. The check recomputes the value from
  the results and compares it at the quoted precision. Inside a table cell, write the binding's
  separators as ``\|`` (a bare ``|`` would end the cell).

Every other figure (a decimal number in prose or a table, outside code) fails the check: bind
it, generate it, or, for a setting the text names rather than a result (``lr=0.1``), write it
as code. The check prints every failure and exits 1 if there is any.

Run: python benchmarks/check_figures.py [--write] [FILE.md ...]
(default: README.md, benchmarks/README.md, docs/)
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import statistics
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
FIGURE = re.compile(r"(?<![\w.\-/])[-+−]?(\d+\.\d+)(?![\d.]*\d)(?!\w)")
NUMBER = re.compile(r"-?\d+\.\d+(?:[eE][-+]?\d+)?")
TEXT_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


GENERATED = re.compile(
    r"<!-- generated from (?:benchmarks/)?results/(?P<folder>[\w.\-]+)/?: (?P<what>.+?) -->\n"
    r"(?P<body>.*?)<!-- end generated -->",
    re.S,
)
BOUND = re.compile(r"(?P<figure>[-+−]?\d+\.\d+)<!-- bind (?P<binding>(?:(?!-->).)*?) -->")


@dataclass(frozen=True)
class Mismatch:
    """A bound figure or a generated block that its results no longer give."""

    document: Path
    where: str
    problem: str

    def __str__(self) -> str:
        name = self.document.relative_to(ROOT) if self.document.is_relative_to(ROOT) else self.document
        return f"{name} [{self.where}]: {self.problem}"


@functools.cache
def _study(folder: str):  # noqa: ANN202 (gap-art is imported only when a binding needs it)
    from gap_art.bench.report import read_study

    return read_study(RESULTS / folder)


@functools.cache
def _rows(folder: str):  # noqa: ANN202
    """A study's rows with their derived columns and its config, without the statistics a
    bound row figure does not need."""
    from gap_art.bench.flags import annotate
    from gap_art.bench.report import load_results

    rows, config, _, checks = load_results(RESULTS / folder)
    annotate(rows, checks, config.attack_eps)
    return rows, config


@functools.cache
def render_block(folder: str, what: str) -> str:
    """A generated block's text, rendered now from ``folder``'s results.json by gap-art."""
    from gap_art.bench.report import report_document
    from gap_art.bench.verdict import bottom_line, verdict

    study = _study(folder)
    if what in ("verdict", "bottom line"):
        lines = [f"**{bottom_line(study.rows, study.analysis, study.config)}**"]
        if what == "verdict":
            lines += [
                "",
                *(f"- {line}" for line in verdict(study.rows, study.analysis, study.config, study.checks)),
            ]
        return "".join(f"> {line}\n" if line else ">\n" for line in lines)
    goal = re.fullmatch(r'goal "(.+)"', what)
    if goal is not None:
        return render_goal(folder, goal.group(1))
    heading = re.fullmatch(r'section "(.+)"', what)
    if heading is None:
        raise ValueError(
            f"unknown generated block {what!r}: 'bottom line', 'verdict', 'section \"HEADING\"' "
            "or 'goal \"FILE\"'"
        )
    document = report_document(
        study.rows, study.config, study.env, study.checks, RESULTS / folder, study.analysis
    ).to_markdown()
    marker = f"\n## {heading.group(1)}\n"
    if marker not in document:
        raise ValueError(f"the report of {folder} has no section {heading.group(1)!r}")
    body = document.split(marker, 1)[1].split("\n## ", 1)[0]
    kept = [line for line in body.splitlines() if not line.startswith("![")]
    return "\n".join(kept).strip() + "\n"


@functools.cache
def _goal_check(folder: str, path: str):  # noqa: ANN202 (gap-art is imported only when needed)
    """The goal file at ``path`` (from the repository's root) and its clauses checked on
    ``folder``'s study, once for its generated block and every binding that reads it."""
    from gap_art.bench.goal import Goal, check_goal

    study, goal = _study(folder), Goal.load(ROOT / path)
    return goal, check_goal(goal, study.rows, study.config.attack_eps)


def render_goal(folder: str, path: str) -> str:
    """``gap-art report --goal``'s check of the goal file at ``path`` on ``folder``'s study, as a
    text block."""
    from gap_art.bench.goal import format_goal

    return f"```text\n{format_goal(*_goal_check(folder, path))}\n```\n"


@functools.cache
def bound_value(binding: str) -> float:
    """The value a ``bind`` comment names, recomputed from its study's results.json; ``A minus
    B`` is the difference of two bindings (either may be a number, e.g. a goal's threshold)."""
    from gap_art.bench.primary import primary_results
    from gap_art.evaluation.metrics import t_interval

    if " minus " in binding:
        first, second = binding.split(" minus ", 1)
        return _operand(first) - _operand(second)
    folder, *parts = [part.strip() for part in binding.split("|")]
    if folder.endswith(".json"):
        return json_value(folder, parts)
    if folder.endswith(".txt"):
        return text_value(folder, *parts)
    if folder.endswith(".toml"):
        return field_value(tomllib.loads((ROOT / folder).read_text()), folder, parts)
    if parts and parts[0] == "goal":
        return goal_value(folder, *parts[1:])
    if parts and parts[0].startswith("noise from "):
        return noise_value(folder, parts[0].removeprefix("noise from ").strip(), *parts[1:])
    rows, config = _rows(folder)
    if parts and parts[0] == "primary":
        _, comparison, field = parts
        result = next((r for r in primary_results(rows, config) if str(r.comparison) == comparison), None)
        if result is None:
            raise ValueError(f"{folder} has no primary comparison {comparison!r}")
        value = getattr(result, field)
        if not isinstance(value, (int, float)):
            raise ValueError(f"{comparison!r}: {field} is {value!r}, not a number")
        return float(value)
    target, cell, metric, *statistic = parts
    attack, _, threat = cell.partition(" from ")
    values = {
        row["seed"]: row[metric]
        for row in rows
        if row["target"] == target and row["attack"] == attack and row["threat_model"] == threat
        and row["eps"] == config.attack_eps and not row.get("error") and row.get(metric) is not None
    }  # fmt: skip
    if not values:
        raise ValueError(f"{folder} has no {metric} of {target} under {cell}")
    if statistic and statistic[0] in ("low", "high"):  # the report's t interval over seeds, in [0, 1]
        _, low, high = t_interval(list(values.values()))
        return max(0.0, low) if statistic[0] == "low" else min(1.0, high)
    if statistic:
        seed = int(statistic[0].removeprefix("seed").strip())
        if seed not in values:
            raise ValueError(f"{folder} has no {metric} of {target} under {cell} in seed {seed}")
        return float(values[seed])
    return float(sum(values.values()) / len(values))


def goal_value(folder: str, path: str, method: str, clause: str) -> float:
    """What ``gap-art report FOLDER --goal PATH`` measures for ``method``'s one clause that begins
    with ``clause`` (the first number of its distance: ``0.400`` of ``0.400 (-0.100)``)."""
    _, clauses = _goal_check(folder, path)
    found = [c for c in clauses if c.method == method and c.clause.startswith(clause)]
    if len(found) != 1:
        raise ValueError(f"{folder}: {len(found)} clauses of {method} begin with {clause!r} under {path}")
    number = NUMBER.search(found[0].distance)
    if number is None:
        raise ValueError(f"{folder}: {method}'s clause {clause!r} has no number ({found[0].distance!r})")
    return float(number.group())


def text_value(file: str, label: str, column: str | None = None) -> float:
    """The first number after the first occurrence of ``label`` in ``benchmarks/results/<file>``,
    or, with ``column`` N, the N-th number (from 1) of the first line that holds ``label`` (a
    table whose label ends its line, as cProfile's)."""
    text = (RESULTS / file).read_text()
    if label not in text:
        raise ValueError(f"{file} has no {label!r}")
    at = text.index(label)
    if column is None:
        number = TEXT_NUMBER.search(text, at + len(label))
        if number is None:
            raise ValueError(f"{file} has no number after {label!r}")
        return float(number.group())
    line = text[text.rfind("\n", 0, at) + 1 :].split("\n", 1)[0]
    numbers = TEXT_NUMBER.findall(line)
    if not 1 <= int(column) <= len(numbers):
        raise ValueError(f"{file}: the line of {label!r} has {len(numbers)} numbers, not {column}")
    return float(numbers[int(column) - 1])


@functools.cache
def _transfer_cells(folder: str) -> dict[tuple[object, ...], float]:
    """A study's transfer accuracy per (seed, target, attack, attacker, eps) cell."""
    rows = json.loads((RESULTS / folder / "results.json").read_text())["rows"]
    return {
        (r["seed"], r["target"], r["attack"], r["threat_model"], r.get("eps")): float(r["transfer_accuracy"])
        for r in rows
        if r.get("transfer_accuracy") is not None and not r.get("error")
    }


def noise_value(folder: str, other: str, statistic: str) -> float:
    """The ``median`` or ``largest`` absolute change in transfer accuracy from ``folder``'s
    study to ``other``'s, a rerun of it, over the cells both hold."""
    ours, theirs = _transfer_cells(folder), _transfer_cells(other)
    changes = sorted(abs(ours[cell] - theirs[cell]) for cell in ours.keys() & theirs.keys())
    if not changes:
        raise ValueError(f"{folder} and {other} share no cells")
    if statistic == "largest":
        return changes[-1]
    if statistic == "median":
        return statistics.median(changes)
    raise ValueError(f"noise statistic must be 'median' or 'largest', got {statistic!r}")


def _operand(text: str) -> float:
    """A number written in a ``minus`` binding, or the value of the binding it is."""
    try:
        return float(text)
    except ValueError:
        return bound_value(text.strip())


def json_value(file: str, keys: list[str]) -> float:
    """The number at ``keys`` in ``benchmarks/results/<file>`` (see the module docstring)."""
    return field_value(json.loads((RESULTS / file).read_text()), file, keys)


def field_value(value: object, file: str, keys: list[str]) -> float:
    """The number at ``keys`` in ``value``, a file's parsed content."""
    for key in keys:
        field, is_match, wanted = key.partition("=")
        if is_match and isinstance(value, list):
            value = next((v for v in value if isinstance(v, dict) and str(v.get(field)) == wanted), None)
        elif isinstance(value, list) and key.lstrip("-").isdigit():
            value = value[int(key)] if -len(value) <= int(key) < len(value) else None
        else:
            value = value.get(key) if isinstance(value, dict) else None
        if value is None:
            raise ValueError(f"{file} has nothing at {' | '.join(keys)} ({key!r})")
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ValueError(f"{file} | {' | '.join(keys)} is {value!r}, not a number")
    return float(value)


def _agrees(figure: str, value: float) -> bool:
    """Whether ``figure`` is ``value`` rounded to the figure's places (a typographic minus and a
    plus sign read as signs)."""
    places = len(figure.split(".")[1])
    return float(f"{value:.{places}f}") == float(figure.replace("−", "-"))


def check_bindings(document: Path, text: str, write: bool = False) -> tuple[str, list[Mismatch]]:
    """The document's text with every generated block rendered again, and every generated
    block or bound figure that disagrees with its results (none are reported when ``write``:
    the blocks are rewritten instead)."""
    problems: list[Mismatch] = []

    def block(match: re.Match[str]) -> str:
        folder, what, body = match["folder"], match["what"], match["body"]
        try:
            fresh = render_block(folder, what)
        except (ValueError, FileNotFoundError) as error:
            problems.append(Mismatch(document, f"generated from {folder}", str(error)))
            return match.group(0)
        if fresh != body and not write:
            stale = "differs from its results: run python benchmarks/check_figures.py --write"
            problems.append(Mismatch(document, f"generated from {folder}: {what}", stale))
        if not write:
            return match.group(0)
        start, end = match.start("body") - match.start(), match.end("body") - match.start()
        return match.group(0)[:start] + fresh + match.group(0)[end:]

    text = GENERATED.sub(block, text)
    for match in BOUND.finditer(text):
        figure, binding = match["figure"], match["binding"].replace("\\|", "|")  # a table cell's \|
        try:
            value = bound_value(binding)
        except (ValueError, KeyError, FileNotFoundError) as error:
            problems.append(Mismatch(document, f"bind {binding}", f"cannot recompute: {error}"))
            continue
        if not _agrees(figure, value):
            problems.append(
                Mismatch(document, f"bind {binding}", f"{figure} quoted, the results give {value:.6g}")
            )
    return text, problems


def unbound(text: str) -> str:
    """``text`` without its generated blocks and bound figures."""
    return BOUND.sub("", GENERATED.sub("", text))


@dataclass(frozen=True)
class Unbound:
    """A figure in prose that no binding or generated block holds."""

    document: Path
    section: str
    figure: str

    def __str__(self) -> str:
        name = self.document.relative_to(ROOT) if self.document.is_relative_to(ROOT) else self.document
        return (
            f"{name} [{self.section}]: {self.figure} is bound to no results "
            "(add <!-- bind ... -->, or write a setting as code)"
        )


def sections(text: str) -> list[tuple[str, str]]:
    """``(heading, prose)`` per section: the prose without code (fenced blocks and inline spans)."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    parts = re.split(r"^(#{1,6} .*)$", text, flags=re.M)
    raw = [("(top)", parts[0])] + [
        (parts[i].lstrip("# ").strip(), parts[i + 1]) for i in range(1, len(parts), 2)
    ]
    return [(heading, re.sub(r"`[^`]+`", "", body)) for heading, body in raw]  # code may wrap lines


def check_document(document: Path) -> list[Unbound]:
    """The figures of ``document`` that are neither bound nor generated."""
    return [
        Unbound(document, heading, figure)
        for heading, prose in sections(unbound(document.read_text()))
        for figure in dict.fromkeys(m.group(1) for m in FIGURE.finditer(prose))
    ]


def default_documents() -> list[Path]:
    docs = sorted((ROOT / "docs").rglob("*.md")) if (ROOT / "docs").is_dir() else []
    return [ROOT / "README.md", ROOT / "benchmarks" / "README.md", *docs]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "documents",
        nargs="*",
        type=Path,
        help="Markdown files (default: README.md, benchmarks/README.md, docs/)",
    )
    parser.add_argument("--write", action="store_true", help="rewrite every generated block from its results")
    args = parser.parse_args(argv)
    write = args.write
    documents = [d.resolve() for d in args.documents] or default_documents()
    failures: list[Unbound | Mismatch] = []
    bound = 0
    for document in documents:
        text = document.read_text()
        fresh, problems = check_bindings(document, text, write)
        if write and fresh != text:
            document.write_text(fresh)
            print(f"rewrote the generated blocks of {document}")
        failures += problems
        bound += len(BOUND.findall(fresh)) + sum(
            len(FIGURE.findall(m["body"])) for m in GENERATED.finditer(fresh)
        )
        failures += check_document(document)
    for failure in failures:
        print(failure)
    print(f"{bound} bound figures in {len(documents)} documents; {len(failures)} failing")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
