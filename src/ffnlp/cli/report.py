"""`ffnlp report DIR`: the HTML report of a run, a repeat or cv folder, or a tune study."""

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
    storage: str = typer.Option(
        None,
        "--storage",
        help="Tune study only: the Optuna storage URL the study was run with, to read its trials "
        "from (default: the folder's own study.db, else trials.csv). The URL in tune.json is "
        "never opened on its own: a report reads only the folder's files.",
    ),
) -> None:
    """Write a self-contained HTML report (results, curves, plots, configuration) for a run.

    Repeat or cv folder: every seed's or fold's figures, mean ± sd and 95% CI, all curves on one plot.

    Tune study: optimisation history, parameter importances, slices, parallel coordinates, every trial's curves, the best trials.

    Example:

        ffnlp report runs/sst2_logreg && xdg-open runs/sst2_logreg/report.html
    """
    from ffnlp.report.html import write_report  # imports matplotlib and torch

    typer.echo(str(write_report(run, out, storage)))
