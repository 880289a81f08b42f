"""The ``gap-art`` command line: a thin layer over the library, one module per command group
(:mod:`~gap_art.cli.bench`, :mod:`~gap_art.cli.studies`, :mod:`~gap_art.cli.models`,
:mod:`~gap_art.cli.export`, :mod:`~gap_art.cli.evaluate`) beside the options they share
(:mod:`~gap_art.cli.options`)."""

from __future__ import annotations

import warnings
from typing import Any, TextIO

import click

from gap_art import __version__
from gap_art.cli.bench import bench
from gap_art.cli.evaluate import evaluate
from gap_art.cli.export import export
from gap_art.cli.models import prune, quantize, train
from gap_art.cli.studies import compare, list_catalogue, report


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gap-art")
def main() -> None:
    """gap-art: Greedy Adversarial Pruning and transfer attacks on compressed models, for ART."""
    warnings.showwarning = _show_warning


def _show_warning(
    message: Warning | str, category: type[Warning], filename: str, lineno: int,
    file: TextIO | None = None, line: Any = None,
) -> None:  # fmt: skip
    """A warning on the command line is one ``Warning:`` line, without a source location."""
    click.echo(f"Warning: {message}", err=True)


for command in (bench, report, compare, list_catalogue, train, prune, quantize, export, evaluate):
    main.add_command(command)

__all__ = ["main"]
