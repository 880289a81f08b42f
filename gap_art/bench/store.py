"""The results folder: cached task outputs and the append-only log of finished cells.

Every write is atomic (temporary file, then rename) or an append of one whole line, so a
run killed at any moment leaves only complete files behind.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gap_art.bench.task_results import TaskResult, result_from_dict
from gap_art.runtime import write_text


class Store:
    """Paths and atomic I/O under one results folder (``--out``)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.cache = self.root / "cache"
        self.rows_log = self.root / "rows.jsonl"

    def prepare(self) -> None:
        """Create the folder, or fail with a clear message if it cannot be written."""
        try:
            self.cache.mkdir(parents=True, exist_ok=True)
            probe = self.root / ".write-test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as error:
            raise PermissionError(f"--out {self.root} is not writable: {error.strerror or error}") from error

    def path(self, task_id: str, suffix: str) -> Path:
        """Where a task keeps an artifact (``.pt``, ``.npz``) or its metadata (``.json``)."""
        return self.cache / f"{task_id}{suffix}"

    def read_result(self, task_id: str) -> TaskResult | None:
        """The finished task's result, or ``None`` if it has not finished (or its record is
        torn, or of another version of gap-art: then it is redone)."""
        path = self.path(task_id, ".json")
        if not path.is_file():
            return None
        try:
            return result_from_dict(json.loads(path.read_text()))
        except ValueError:
            return None

    def write_result(self, task_id: str, result: TaskResult) -> None:
        """Mark a task finished; written last, after its artifacts."""
        text = json.dumps(result.to_dict(), indent=1, sort_keys=True)
        write_text(self.path(task_id, ".json"), text)

    def write_config(self, config: dict[str, Any]) -> None:
        """Record the configuration being run (how a later run finds an unfinished one)."""
        text = json.dumps(config, indent=1, sort_keys=True)
        write_text(self.root / "config.json", text)

    def read_config(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.root / "config.json").read_text())
        except (OSError, ValueError):
            return None

    def finished_rows(self) -> dict[str, dict[str, Any]]:
        """Rows logged so far, by cell id (the last line wins; a torn last line is ignored)."""
        rows: dict[str, dict[str, Any]] = {}
        if not self.rows_log.is_file():
            return rows
        for line in self.rows_log.read_text().splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            rows[row["cell_id"]] = row
        return rows

    def append_row(self, row: Mapping[str, Any]) -> None:
        """Log one finished cell as one line, flushed to disk before returning."""
        self.rows_log.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(row, sort_keys=True) + "\n"
        with open(self.rows_log, "a") as handle:
            if handle.tell() and not self._ends_with_newline():
                handle.write("\n")  # seal a line torn by an earlier crash
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())

    def _ends_with_newline(self) -> bool:
        with open(self.rows_log, "rb") as handle:
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) == b"\n"

    def write_text(self, name: str, text: str) -> Path:
        """Write a report file atomically."""
        return write_text(self.root / name, text)
