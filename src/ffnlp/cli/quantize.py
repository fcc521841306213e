"""`ffnlp quantize RUN --out RUN_Q`: a smaller classifier run (pruning, int8, product quantisation)."""

from pathlib import Path
from typing import Annotated, Any

from ffnlp.cli.common import print_result, screen
from ffnlp.cli.options import HelpTable as Help
from ffnlp.cli.options import with_options

HELP = Help(
    {
        "RUN": "Run directory of a trained classifier.",
        "--out": "The new, quantised run folder.",
        "--method": "int8: every matrix as int8 rows with a scale each; pq: the input table "
        "product-quantised (fastText's method), the other matrices int8.",
        "--cutoff": "Keep only this many rows of the input table (words, hash buckets or n-gram "
        "features); 0 keeps them all.",
        "--prune-by": "Which rows --cutoff keeps: norm (the largest rows, as fastText) or count "
        "(the rows read most often in --train).",
        "--retrain": "Train the pruned model again on --train (with the run's own training "
        "settings) before quantising it.",
        "--train": "Training data: for --retrain and --prune-by count.",
        "--dev": "Dev data: early stopping of --retrain, and scored before and after.",
        "--test": "Test data: both runs scored and timed on it, side by side.",
        "--epochs": "Epochs of --retrain (default: the run's train.epochs).",
        "--dsub": "pq: columns per one-byte code (fastText's -dsub).",
        "--qnorm/--no-qnorm": "pq: quantise the rows' norms apart from their directions "
        "(fastText's -qnorm).",
        "--force": "Replace the run already in --out.",
        "--json": "Print the comparison as JSON.",
    }
)


def quantize_options(
    run: Annotated[Path, HELP("RUN")],
    out: Annotated[Path, HELP("--out", "-o")],
    method: Annotated[str, HELP("--method")] = "pq",
    cutoff: Annotated[int, HELP("--cutoff")] = 0,
    prune_by: Annotated[str, HELP("--prune-by")] = "norm",
    retrain: Annotated[bool, HELP("--retrain")] = False,
    train: Annotated[Path | None, HELP("--train")] = None,
    dev: Annotated[Path | None, HELP("--dev")] = None,
    test: Annotated[Path | None, HELP("--test")] = None,
    epochs: Annotated[int | None, HELP("--epochs", min=1)] = None,
    dsub: Annotated[int, HELP("--dsub", min=1)] = 2,
    qnorm: Annotated[bool, HELP("--qnorm/--no-qnorm")] = True,
    force: Annotated[bool, HELP("--force")] = False,
) -> dict[str, Any]:
    """The options of ffnlp.export.quantize.quantize_run, by its keywords' names."""
    return locals()


@with_options(quantize_options, "options")
def quantize(options: dict[str, Any], json_: Annotated[bool, HELP("--json")] = False) -> None:
    """Make a smaller copy of a classifier run: prune its vocabulary, optionally retrain,
    quantise its weights. The result is a run like any other (classify predict/eval, export,
    ffnlp.load read it); its size, scores and predict speed are shown beside the original's.

    Example:

        ffnlp quantize runs/cooking --out runs/cooking_q --cutoff 100000 --retrain \\
            --train ../shared/data/cooking/cooking.train --test ../shared/data/cooking/cooking.valid
    """
    from ffnlp.export.quantize import quantize_run  # imports torch

    report = quantize_run(**options)
    run, out = str(options["run"]), str(options["out"])
    print_result(report, json_, lambda r: screen.quantize(r, run, out))
