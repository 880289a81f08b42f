"""Plain-text exports shared by every result type: CSV and fixed-width terminal tables."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any


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
