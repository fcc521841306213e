"""`ffnlp quantize RUN --out RUN_Q`: a smaller classifier run (pruning, int8, product quantisation)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from ffnlp.cli.common import out_console, print_json


def quantize(
    run: Path = typer.Argument(..., help="Run directory of a trained classifier."),
    out: Path = typer.Option(..., "--out", "-o", help="The new, quantised run folder."),
    method: str = typer.Option(
        "pq",
        "--method",
        help="int8: every matrix as int8 rows with a scale each; pq: the input table "
        "product-quantised (fastText's method), the other matrices int8.",
    ),
    cutoff: int = typer.Option(
        0,
        "--cutoff",
        help="Keep only this many rows of the input table (words, hash buckets or n-gram "
        "features); 0 keeps them all.",
    ),
    prune_by: str = typer.Option(
        "norm",
        "--prune-by",
        help="Which rows --cutoff keeps: norm (the largest rows, as fastText) or count (the "
        "rows read most often in --train).",
    ),
    retrain: bool = typer.Option(
        False,
        "--retrain",
        help="Train the pruned model again on --train (with the run's own training settings) before "
        "quantising it.",
    ),
    train: Path = typer.Option(
        None, "--train", help="Training data: for --retrain and --prune-by count."
    ),
    dev: Path = typer.Option(
        None, "--dev", help="Dev data: early stopping of --retrain, and scored before and after."
    ),
    test: Path = typer.Option(
        None, "--test", help="Test data: both runs scored and timed on it, side by side."
    ),
    epochs: int = typer.Option(
        None, "--epochs", min=1, help="Epochs of --retrain (default: the run's train.epochs)."
    ),
    dsub: int = typer.Option(
        2, "--dsub", min=1, help="pq: columns per one-byte code (fastText's -dsub)."
    ),
    qnorm: bool = typer.Option(
        True,
        "--qnorm/--no-qnorm",
        help="pq: quantise the rows' norms apart from their directions (fastText's -qnorm).",
    ),
    force: bool = typer.Option(False, "--force", help="Replace the run already in --out."),
    json_: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
) -> None:
    """Make a smaller copy of a classifier run: prune its vocabulary, optionally retrain,
    quantise its weights. The result is a run like any other (classify predict/eval, export,
    ffnlp.load read it); its size, scores and predict speed are shown beside the original's.

    Example:

        ffnlp quantize runs/cooking --out runs/cooking_q --cutoff 100000 --retrain \\
            --train ../shared/data/cooking/cooking.train --test ../shared/data/cooking/cooking.valid
    """
    from ffnlp.export.quantize import quantize_run

    report = quantize_run(
        run,
        out,
        method=method,
        cutoff=cutoff,
        prune_by=prune_by,
        retrain=retrain,
        train=train,
        dev=dev,
        test=test,
        epochs=epochs,
        dsub=dsub,
        qnorm=qnorm,
        force=force,
    )
    if json_:
        print_json(report)
        return
    out_console.print(comparison_table(report, str(run), str(out)))


def comparison_table(report: dict[str, Any], run: str, out: str) -> Table:
    """The original and the quantised run, side by side."""
    before, after = report["original"], report["quantized"]
    table = Table(title=f"{report['method']}, rows {report['rows'][0]:,} -> {report['rows'][1]:,}")
    table.add_column("")
    table.add_column(run)
    table.add_column(out)
    table.add_column("ratio")
    for key, label in (("model_bytes", "model files (bytes)"), ("bytes", "run folder (bytes)")):
        table.add_row(
            label, f"{before[key]:,}", f"{after[key]:,}", f"{before[key] / after[key]:.1f}x smaller"
        )
    for split in ("dev", "test"):
        for metric in ("accuracy", "precision_at_1", "macro_f1"):
            if metric in before.get(split, {}):
                a, b = before[split][metric], after[split][metric]
                table.add_row(
                    f"{split} {metric}", f"{a:.4f}", f"{b:.4f}", f"{100 * (b - a):+.2f} points"
                )
    if "texts_per_second" in before:
        a, b = before["texts_per_second"], after["texts_per_second"]
        table.add_row("predict (texts/s)", f"{a:,.0f}", f"{b:,.0f}", f"{b / a:.2f}x")
    return table
