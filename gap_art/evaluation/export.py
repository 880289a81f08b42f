"""Plain-text exports of results: CSV, JSON and tables (fixed-width for the terminal,
Markdown for reports)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tabulate import tabulate

from gap_art.evaluation.transfer import TransferResult, WhiteboxResult


def rows_to_csv(rows: Sequence[Mapping[str, Any]], fieldnames: Sequence[str] | None = None) -> str:
    """CSV text with a header; columns are ``fieldnames`` (default: the first row's keys) and
    keys outside them are left out."""
    buffer = io.StringIO()
    columns = list(fieldnames) if fieldnames is not None else list(rows[0]) if rows else []
    if columns:
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return buffer.getvalue()


def fixed_width_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A left-aligned terminal table with a dashed rule under the header."""
    cells = [[str(c) for c in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


Result = TransferResult | WhiteboxResult


def to_json(results: Sequence[Result], path: str | Path | None = None) -> str:
    """Results as a JSON list of flat dicts; written to ``path`` when given."""
    text = json.dumps([r.to_dict() for r in results], indent=2)
    if path is not None:
        Path(path).write_text(text)
    return text


def to_csv(results: Sequence[Result], path: str | Path | None = None) -> str:
    """Results as CSV with one row per result; written to ``path`` when given."""
    text = rows_to_csv([r.to_dict() for r in results])
    if path is not None:
        Path(path).write_text(text)
    return text


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def format_table(results: Sequence[TransferResult], markdown: bool = False) -> str:
    """A compact table: clean, transfer and success rate per target and attacker, for the
    terminal (fixed width) or a report (``markdown``)."""
    header = ("target", "attack", "attacker", "clean", "transfer", "src wb", "success", "both", "n")
    rows = [
        (
            r.target,
            r.attack,
            r.source,
            _cell(r.clean_accuracy),
            _cell(r.transfer_accuracy),
            _cell(r.source_whitebox_accuracy),
            _cell(r.transfer_success_rate),
            _cell(r.both_correct),
            str(r.n),
        )
        for r in results
    ]
    if markdown:
        return tabulate(rows, headers=header, tablefmt="github", disable_numparse=True)
    return fixed_width_table(header, rows)
