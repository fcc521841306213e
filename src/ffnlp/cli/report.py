"""`ffnlp report RUN`: the HTML report of a run directory."""

from __future__ import annotations

from pathlib import Path

import typer


def report(
    run: Path = typer.Argument(..., help="Run directory (any task)."),
    out: Path = typer.Option(
        None, "--out", "-o", help="Where to write the page (default RUN/report.html)."
    ),
) -> None:
    """Write a self-contained HTML report (results, curves, plots, configuration) for a run.

    Example:

        ffnlp report runs/sst2_logreg && xdg-open runs/sst2_logreg/report.html
    """
    from ffnlp.report.html import write_report

    typer.echo(str(write_report(run, out)))
