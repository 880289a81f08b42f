"""The ``gap-art`` command line: a thin layer over the library, one module per command group
(:mod:`~gap_art.cli.bench`, :mod:`~gap_art.cli.studies`, :mod:`~gap_art.cli.models`,
:mod:`~gap_art.cli.export`, :mod:`~gap_art.cli.evaluate`) beside the options they share
(:mod:`~gap_art.cli.options`)."""

from __future__ import annotations

import logging
import traceback
import warnings
from typing import Any, TextIO

import click
from tqdm.auto import tqdm

from gap_art import __version__
from gap_art.cli.bench import bench
from gap_art.cli.evaluate import evaluate
from gap_art.cli.export import export
from gap_art.cli.models import prune, quantize, train
from gap_art.cli.studies import compare, list_catalogue, report

BUG_REPORT = (
    "This is a bug in gap-art or a library it uses, not a mistake in your command: please report "
    "it at https://github.com/gap-art/gap-art/issues with the command you ran and the traceback above."
)


class _Main(click.Group):
    """The command group: a usage error is one line and exit 2 (click's own, or a
    :class:`~gap_art.errors.ParameterError` a command turned into one); anything else is a bug,
    shown with its traceback, exit 1 and a request to report it; Ctrl-C says how to go on."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt:
            resume = " rerun the same command to resume: finished tasks are kept." if _is_bench(ctx) else ""
            click.echo(f"\ninterrupted.{resume}", err=True)
            raise SystemExit(130) from None
        except Exception:
            click.echo(traceback.format_exc(), err=True)
            click.echo(BUG_REPORT, err=True)
            raise SystemExit(1) from None


def _is_bench(ctx: click.Context) -> bool:
    return ctx.invoked_subcommand == "bench"


class _AboveProgressBars(logging.Handler):
    """Log records as lines on stderr, written above any progress bar (``tqdm.write``)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=click.get_text_stream("stderr"))
        except Exception:  # a broken stream must not stop the command
            self.handleError(record)


def configure_logging(verbosity: int) -> None:
    """gap-art's records at INFO (each model built, each set of examples crafted), DEBUG with
    ``verbosity`` 1 or more, WARNING and above only with ``verbosity`` below 0; the libraries'
    (ART's included) at WARNING unless ``verbosity`` is 2 or more."""
    handler = _AboveProgressBars()
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if not isinstance(h, _AboveProgressBars)] + [handler]
    root.setLevel(logging.DEBUG if verbosity >= 2 else logging.WARNING)
    level = logging.WARNING if verbosity < 0 else logging.INFO if verbosity == 0 else logging.DEBUG
    logging.getLogger("gap_art").setLevel(level)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gap-art")
@click.option("-v", "--verbose", count=True, help="More log lines (-vv: the libraries' too, ART's included).")
@click.option(
    "-q", "--quiet", is_flag=True, help="Warnings and errors only (a command's own --quiet hides its bars)."
)
def main(verbose: int, quiet: bool) -> None:
    """gap-art: Greedy Adversarial Pruning and transfer attacks on compressed models, for ART."""
    warnings.showwarning = _show_warning
    configure_logging(-1 if quiet else verbose)


def _show_warning(
    message: Warning | str, category: type[Warning], filename: str, lineno: int,
    file: TextIO | None = None, line: Any = None,
) -> None:  # fmt: skip
    """A warning on the command line is one ``Warning:`` line, without a source location."""
    click.echo(f"Warning: {message}", err=True)


for command in (bench, report, compare, list_catalogue, train, prune, quantize, export, evaluate):
    main.add_command(command)

__all__ = ["main"]
