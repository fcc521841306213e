"""`ffnlp quantize RUN --out RUN_Q`: a smaller classifier run (pruning, int8, product quantisation)."""

from pathlib import Path
from typing import Annotated

import typer

from ffnlp.cli.common import print_json, screen

Run = Annotated[Path, typer.Argument(help="Run directory of a trained classifier.")]
Out = Annotated[Path, typer.Option("--out", "-o", help="The new, quantised run folder.")]
Method = Annotated[
    str,
    typer.Option(
        "--method",
        help="int8: every matrix as int8 rows with a scale each; pq: the input table "
        "product-quantised (fastText's method), the other matrices int8.",
    ),
]
Cutoff = Annotated[
    int,
    typer.Option(
        "--cutoff",
        help="Keep only this many rows of the input table (words, hash buckets or n-gram "
        "features); 0 keeps them all.",
    ),
]
PruneBy = Annotated[
    str,
    typer.Option(
        "--prune-by",
        help="Which rows --cutoff keeps: norm (the largest rows, as fastText) or count (the "
        "rows read most often in --train).",
    ),
]
Retrain = Annotated[
    bool,
    typer.Option(
        "--retrain",
        help="Train the pruned model again on --train (with the run's own training settings) before "
        "quantising it.",
    ),
]
Train = Annotated[
    Path | None, typer.Option("--train", help="Training data: for --retrain and --prune-by count.")
]
Dev = Annotated[
    Path | None,
    typer.Option(
        "--dev", help="Dev data: early stopping of --retrain, and scored before and after."
    ),
]
Test = Annotated[
    Path | None,
    typer.Option("--test", help="Test data: both runs scored and timed on it, side by side."),
]
Epochs = Annotated[
    int | None,
    typer.Option("--epochs", min=1, help="Epochs of --retrain (default: the run's train.epochs)."),
]
Dsub = Annotated[
    int, typer.Option("--dsub", min=1, help="pq: columns per one-byte code (fastText's -dsub).")
]
Qnorm = Annotated[
    bool,
    typer.Option(
        "--qnorm/--no-qnorm",
        help="pq: quantise the rows' norms apart from their directions (fastText's -qnorm).",
    ),
]
Force = Annotated[bool, typer.Option("--force", help="Replace the run already in --out.")]
Json = Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")]


def quantize(
    run: Run,
    out: Out,
    method: Method = "pq",
    cutoff: Cutoff = 0,
    prune_by: PruneBy = "norm",
    retrain: Retrain = False,
    train: Train = None,
    dev: Dev = None,
    test: Test = None,
    epochs: Epochs = None,
    dsub: Dsub = 2,
    qnorm: Qnorm = True,
    force: Force = False,
    json_: Json = False,
) -> None:
    """Make a smaller copy of a classifier run: prune its vocabulary, optionally retrain,
    quantise its weights. The result is a run like any other (classify predict/eval, export,
    ffnlp.load read it); its size, scores and predict speed are shown beside the original's.

    Example:

        ffnlp quantize runs/cooking --out runs/cooking_q --cutoff 100000 --retrain \\
            --train ../shared/data/cooking/cooking.train --test ../shared/data/cooking/cooking.valid
    """
    from ffnlp.export.quantize import quantize_run  # imports torch

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
    screen.quantize(report, str(run), str(out))
