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

    Repeat or cv folder: every seed's or fold's figures, mean ± sd and 95% CI, all curves on one plot.

    Tune study: optimisation history, parameter importances, slices, parallel coordinates, every trial's curves, the best trials.

    Example:

        ffnlp report runs/sst2_logreg && xdg-open runs/sst2_logreg/report.html
    """
    from ffnlp.report.html import write_report

    typer.echo(str(write_report(run, out)))
