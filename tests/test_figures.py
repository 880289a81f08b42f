"""Every figure README.md and benchmarks/README.md quote is in the committed results file they
cite (benchmarks/check_figures.py), and the checker finds a figure that is not."""

from __future__ import annotations

import importlib.util
import json
import sys
import tomllib
from decimal import Decimal
from pathlib import Path

import pytest

from gap_art.bench.goal import Goal, check_goal

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("check_figures", ROOT / "benchmarks" / "check_figures.py")
assert spec is not None and spec.loader is not None
check_figures = importlib.util.module_from_spec(spec)
sys.modules["check_figures"] = check_figures  # dataclasses look their module up there
spec.loader.exec_module(check_figures)


def test_every_quoted_figure_is_in_its_cited_results(capsys):
    assert check_figures.main([]) == 0, capsys.readouterr().out


def test_a_figure_missing_from_its_citation_or_without_one_is_reported(tmp_path):
    quick = json.loads((ROOT / "benchmarks" / "results" / "quick" / "results.json").read_text())
    clean = next(r["clean_accuracy"] for r in quick["rows"] if r["target"] == "dense")
    document = tmp_path / "claims.md"
    document.write_text(
        "# Claims\n\n## Cited and true\n\nFrom benchmarks/results/quick/: the dense model's clean "
        f"accuracy is {clean:.3f}.\n\n## Cited and false\n\nFrom benchmarks/results/quick/: 0.12345.\n\n"
        "## Not cited\n\nIt reaches 0.987.\n\n## Settings in code\n\n`eps=0.1` is a setting.\n"
    )
    missing = check_figures.check_document(document)
    assert [(m.section, m.figure) for m in missing] == [
        ("Cited and false", "0.12345"),
        ("Not cited", "0.987"),
    ]


def _one_unit_up(figure: str) -> str:
    """``figure`` moved by one unit of its last digit, written the same way (sign, places)."""
    places = len(figure.split(".")[1])
    sign = figure[0] if figure[0] in "+-−" else ""
    value = abs(Decimal(figure.lstrip("+-−"))) + Decimal(1).scaleb(-places)
    return f"{sign}{value:.{places}f}"


def _bound_figures(text: str) -> list[tuple[str, int, int]]:
    """Every figure a generated block or a ``bind`` comment binds, as the text the checker needs
    to judge it (its figure and comment, or its whole block) and the figure's span in that text:
    a binding is checked on its own, so a one-digit change shows there as in the whole document."""
    spans = [
        (m.group(0), *(i - m.start() for i in m.span("figure"))) for m in check_figures.BOUND.finditer(text)
    ]
    for block in check_figures.GENERATED.finditer(text):
        body = block.start("body") - block.start()
        spans += [
            (block.group(0), body + m.start(1), body + m.end(1))
            for m in check_figures.FIGURE.finditer(block["body"])
        ]
    return spans


def test_a_one_digit_change_to_any_bound_figure_fails():
    """In each committed document, every figure a generated block or a binding holds, moved by
    one unit of its last digit, is a failure the checker reports."""
    checked = 0
    for document in check_figures.default_documents():
        for fragment, start, end in _bound_figures(document.read_text()):
            changed = fragment[:start] + _one_unit_up(fragment[start:end]) + fragment[end:]
            _, problems = check_figures.check_bindings(document, changed)
            assert problems, (
                f"{document.name}: {fragment[start:end]} -> {_one_unit_up(fragment[start:end])} passed"
            )
            assert not check_figures.check_bindings(document, fragment)[1]  # unchanged, it passes
            checked += 1
    assert checked > 300  # the quick preset's table, verdict and prose in docs/


def test_a_binding_that_names_nothing_or_disagrees_fails(tmp_path):
    quick = json.loads((ROOT / "benchmarks" / "results" / "quick" / "results.json").read_text())
    clean = next(
        r["clean_accuracy"] for r in quick["rows"] if r["target"] == "dense" and r["attack"] == "pgd"
    )
    bind = "<!-- bind quick | {} | pgd from dense | clean_accuracy -->"
    document = tmp_path / "claims.md"
    text = (
        f"Right: {clean:.3f}{bind.format('dense')}. Rounded: {clean:.2f}{bind.format('dense')}. "
        f"Wrong: {clean + 0.01:.3f}{bind.format('dense')}. Missing: 0.5{bind.format('no-such@4x')}.\n"
    )
    _, problems = check_figures.check_bindings(document, text)
    assert [p.problem.split(" ")[0] for p in problems] == [f"{clean + 0.01:.3f}", "cannot"]


def test_a_binding_into_a_benchmark_json_reads_the_named_field(tmp_path):
    """``bind FILE.json | KEY | ...``: fields, list indices and ``FIELD=VALUE`` entries."""
    results = json.loads((ROOT / "benchmarks" / "results" / "gap_cost_fashion-mnist.json").read_text())
    row = results["rows"][1]
    at = f"<!-- bind gap_cost_fashion-mnist.json | rows | method={row['method']} | seconds -->"
    first = "<!-- bind gap_cost_fashion-mnist.json | rows | 0 | clean_accuracy -->"
    text = (
        f"Right: {row['seconds']:.1f}{at}, {results['rows'][0]['clean_accuracy']:.3f}{first}. "
        f"Wrong: {row['seconds'] + 0.1:.1f}{at}. "
        "Missing: 0.5<!-- bind gap_cost_fashion-mnist.json | rows | method=nothing | seconds -->. "
        "Not a number: 0.5<!-- bind gap_cost_fashion-mnist.json | dataset -->.\n"
    )
    _, problems = check_figures.check_bindings(tmp_path / "claims.md", text)
    assert [p.problem.split(" ")[0] for p in problems] == [f"{row['seconds'] + 0.1:.1f}", "cannot", "cannot"]
    cell = at.replace(" | ", " \\| ")  # in a table cell, the separators are escaped
    table = f"| method | seconds |\n|---|---|\n| {row['method']} | {row['seconds']:.1f}{cell} |\n"
    assert check_figures.check_bindings(tmp_path / "table.md", table)[1] == []
    wrong = table.replace(f"{row['seconds']:.1f}<", f"{row['seconds'] + 0.1:.1f}<")
    assert len(check_figures.check_bindings(tmp_path / "table.md", wrong)[1]) == 1


def test_a_binding_whose_target_holds_a_greater_than_sign_is_checked():
    """``ensemble-adv>magnitude@4x`` names a pretrained method: its ``>`` must not end the
    binding early (which left such figures unchecked and showing their comment)."""
    text = (
        "See benchmarks/results/harden/.\n\n"
        "0.999<!-- bind harden | ensemble-adv>magnitude@4x | pgd from replica | transfer_accuracy -->\n"
    )
    match = check_figures.BOUND.search(text)
    assert match is not None and match["binding"].startswith("harden | ensemble-adv>magnitude@4x")
    _, problems = check_figures.check_bindings(ROOT / "docs" / "results.md", text)
    assert len(problems) == 1


def test_a_difference_binding_recomputes_both_sides():
    """``A minus B``: a paired difference or a distance to a goal's threshold, recomputed from
    the results; the wrong figure fails."""
    quick = json.loads((ROOT / "benchmarks" / "results" / "quick" / "results.json").read_text())
    clean = next(
        r["clean_accuracy"] for r in quick["rows"] if r["target"] == "dense" and r["attack"] == "pgd"
    )
    binding = "0.9 minus quick | dense | pgd from dense | clean_accuracy"
    assert check_figures.bound_value(binding) == pytest.approx(0.9 - clean)
    right, wrong = f"{0.9 - clean:.3f}", f"{0.9 - clean + 0.01:.3f}"
    for figure, failures in ((right, 0), (wrong, 1)):
        text = f"See benchmarks/results/quick/.\n\n{figure}<!-- bind {binding} -->\n"
        assert len(check_figures.check_bindings(ROOT / "docs" / "results.md", text)[1]) == failures


def test_a_binding_reads_a_goal_file_and_what_the_goal_check_measures():
    """``bind benchmarks/goals/F.toml | KEY ...`` reads a goal's threshold from its file, and
    ``bind FOLDER | goal | F.toml | METHOD | CLAUSE`` what ``gap-art report --goal`` measures for
    that clause, so "0.10 short of 0.50" is recomputed on both sides; a wrong figure fails."""
    goal = "benchmarks/goals/frontier.toml"
    threshold = tomllib.loads((ROOT / goal).read_text())["frontier"]["0.05"]
    assert check_figures.bound_value(f"{goal} | frontier | 0.05") == threshold
    clause = "within 5 points, chosen on validation: worst-attacker accuracy >="
    measured = f"pool_fgsm_ablation | goal | {goal} | magnitude+pool-fgsm | {clause}"
    study = check_figures._study("pool_fgsm_ablation")
    clauses = check_goal(Goal.load(ROOT / goal), study.rows, study.config.attack_eps)
    (wanted,) = [c for c in clauses if c.method == "magnitude+pool-fgsm" and c.clause.startswith(clause)]
    assert f"{check_figures.bound_value(measured):.3f}" == wanted.distance.split(" ")[0]
    short = threshold - check_figures.bound_value(measured)
    for figure, failures in ((f"{short:.3f}", 0), (f"{short + 0.001:.3f}", 1)):
        binding = f"{goal} | frontier | 0.05 minus {measured}"
        text = f"See benchmarks/results/pool_fgsm_ablation/.\n\n{figure}<!-- bind {binding} -->\n"
        assert len(check_figures.check_bindings(ROOT / "docs" / "results.md", text)[1]) == failures
    with pytest.raises(ValueError, match="0 clauses"):
        check_figures.bound_value(f"pool_fgsm_ablation | goal | {goal} | magnitude+pool-fgsm@4x | {clause}")
