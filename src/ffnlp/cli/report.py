"""`ffnlp report DIR`: the HTML report of a run, a repeat or cv folder, or a tune study."""

from __future__ import annotations

from pathlib import Path

import typer


def report(
    run: Path = typer.Argument(
        ...,
        help="A run directory (any task), an `ffnlp repeat` or `ffnlp classify cv` folder, "
        "or an `ffnlp tune` study folder.",
    ),
    out: Path = typer.Option(
        None, "--out", "-o", help="Where to write the page (default DIR/report.html)."
    ),
) -> None:
    """Write a self-contained HTML report (results, curves, plots, configuration) for a run.

    For a repeat or cv folder: every seed's or fold's figures, mean ± sd and 95% CI, and all
    the runs' curves on one plot. For a study: the optimisation history, parameter importances,
    slices, parallel coordinates, every trial's curves and the best trials. The runs it links
    to get their own report.html too.

    Example:

        ffnlp report runs/sst2_logreg && xdg-open runs/sst2_logreg/report.html
    """
    from ffnlp.report.html import write_report

    typer.echo(str(write_report(run, out)))
