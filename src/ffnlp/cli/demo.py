"""`ffnlp demo`: the tour on a small generated sample (ffnlp.tasks.demo)."""

from pathlib import Path
from typing import Annotated

import typer

from ffnlp.cli.common import out_console, progress_callbacks, setup_logging
from ffnlp.outputs import check_output_dir


def demo(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for the sample data and the runs.")
    ] = Path("runs/demo"),
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """The tour: write a small sample; train a classifier, a language model and word vectors.

    Example:

        ffnlp demo --out runs/demo
    """
    from ffnlp.tasks.demo import tour  # imports torch

    check_output_dir(out, "--out")  # before the work: a file, below a file, read-only
    setup_logging(quiet)
    bars = progress_callbacks(quiet)
    out_console.rule("[bold]ffnlp demo")
    tour(out, out_console.print, out_console.rule, bars)
