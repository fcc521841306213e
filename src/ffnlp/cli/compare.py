"""`ffnlp compare A B`: is the difference between two configurations real?"""

from pathlib import Path
from typing import Annotated

import typer

from ffnlp.cli.common import print_json, screen

RunA = Annotated[
    Path, typer.Argument(help="A classifier run directory, or an `ffnlp repeat` folder.")
]
RunB = Annotated[Path, typer.Argument(help="The other one (of the same kind).")]
Data = Annotated[
    Path | None,
    typer.Option(
        "--data",
        help="Two classifier runs: labelled data to test both on (default: the predictions.jsonl "
        "each wrote for its --test data).",
    ),
]
Metric = Annotated[str, typer.Option("--metric", help="Two repeat folders: the figure to compare.")]
Bootstrap = Annotated[
    int,
    typer.Option(
        "--bootstrap",
        min=0,
        max=1_000_000,
        help="Two classifier runs: resamples of the paired bootstrap of B - A (0 = none; at "
        "most 1,000,000).",
    ),
]
Seed = Annotated[int, typer.Option("--seed", min=0, help="Seed of the bootstrap's resamples.")]
Json = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def compare(
    run_a: RunA,
    run_b: RunB,
    data: Data = None,
    metric: Metric = "test.accuracy",
    bootstrap: Bootstrap = 10_000,
    seed: Seed = 0,
    json_: Json = False,
) -> None:
    """Compare two runs: two classifiers on the same test examples (McNemar's exact test and a
    paired bootstrap of the accuracy and macro-F1 differences), or two `ffnlp repeat` folders
    (a permutation test over seeds).

    Two classifier runs are compared on --data, or without it on the predictions.jsonl that each
    wrote for its test data (same examples, same order).

    Example:

        ffnlp compare runs/sst2_logreg runs/sst2_ffnn --data ../shared/data/sst2/stsa.binary.test
    """
    from ffnlp.experiments.compare import compare_runs  # imports numpy

    result = compare_runs(run_a, run_b, data, metric, resamples=bootstrap, seed=seed)
    if json_:
        print_json(result)
    else:
        screen.compare(result)
