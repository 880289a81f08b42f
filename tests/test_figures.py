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


def test_every_figure_neither_bound_nor_generated_is_reported(tmp_path):
    """A figure in prose fails unless a binding or a generated block holds it, whatever the
    section cites: a number found somewhere in a cited folder proves nothing. A setting written
    as code is not a figure."""
    quick = json.loads((ROOT / "benchmarks" / "results" / "quick" / "results.json").read_text())
    clean = next(r["clean_accuracy"] for r in quick["rows"] if r["target"] == "dense")
    bind = "<!-- bind quick | dense | pgd from dense | clean_accuracy -->"
    document = tmp_path / "claims.md"
    document.write_text(
        "# Claims\n\n## Cited, unbound\n\nFrom benchmarks/results/quick/: the dense model's clean "
        f"accuracy is {clean:.3f}.\n\n## Bound\n\nIt is {clean:.3f}{bind}.\n\n"
        "## Not cited\n\nIt reaches 0.987.\n\n## Settings in code\n\n`eps=0.1` is a setting.\n"
    )
    unbound = check_figures.check_document(document)
    assert [(u.section, u.figure) for u in unbound] == [
        ("Cited, unbound", f"{clean:.3f}"),
        ("Not cited", "0.987"),
    ]
    assert check_figures.main([str(document)]) == 1


def test_a_text_binding_reads_the_number_after_its_label_or_in_its_line(tmp_path, monkeypatch):
    results = tmp_path / "results"
    (results / "run").mkdir(parents=True)
    (results / "run" / "wall_time.txt").write_text(
        "seeds 0, 1: wall_s 2812.0 (alone)\n  21341  427.365  0.020 {method 'run_backward'}\n"
    )
    monkeypatch.setattr(check_figures, "RESULTS", results)
    assert check_figures.text_value("run/wall_time.txt", "wall_s") == 2812.0
    assert check_figures.text_value("run/wall_time.txt", "run_backward", "2") == 427.365
    for label, column in (("no such label", None), ("run_backward", "9")):
        with pytest.raises(ValueError):
            check_figures.text_value("run/wall_time.txt", label, column)


def test_a_noise_binding_measures_a_rerun_over_the_cells_both_hold(tmp_path, monkeypatch):
    def study(name: str, accuracies: list[float]) -> None:
        rows = [
            {"seed": 0, "target": f"t{i}", "attack": "pgd", "threat_model": "dense", "eps": 0.1,
             "transfer_accuracy": accuracy}
            for i, accuracy in enumerate(accuracies)
        ]  # fmt: skip
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps({"rows": rows}))

    study("a", [0.5, 0.5, 0.5, 0.5])
    study("b", [0.5, 0.6, 0.2, 0.5, 0.9])  # t4 only in b: not shared
    monkeypatch.setattr(check_figures, "RESULTS", tmp_path)
    assert check_figures.noise_value("a", "b", "largest") == pytest.approx(0.3)
    assert check_figures.noise_value("a", "b", "median") == pytest.approx(0.05)


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
