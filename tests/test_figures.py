"""Every figure README.md and benchmarks/README.md quote is in the committed results file they
cite (benchmarks/check_figures.py), and the checker finds a figure that is not."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

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
