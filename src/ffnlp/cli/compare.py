"""`ffnlp compare A B`: is the difference between two configurations real?"""

from pathlib import Path
from typing import Annotated

from ffnlp.cli.common import print_result, screen
from ffnlp.cli.options import HelpTable as Help

HELP = Help(
    {
        "RUN_A": "A classifier run directory, or an `ffnlp repeat` folder.",
        "RUN_B": "The other one (of the same kind).",
        "--data": "Two classifier runs: labelled data to test both on (default: the "
        "predictions.jsonl each wrote for its --test data).",
        "--metric": "Two repeat folders: the figure to compare.",
        "--bootstrap": "Two classifier runs: resamples of the paired bootstrap of B - A (0 = none; "
        "at most 1,000,000).",
        "--seed": "Seed of the bootstrap's resamples.",
        "--json": "Print the result as JSON.",
    }
)


def compare(
    run_a: Annotated[Path, HELP("RUN_A")],
    run_b: Annotated[Path, HELP("RUN_B")],
    data: Annotated[Path | None, HELP("--data")] = None,
    metric: Annotated[str, HELP("--metric")] = "test.accuracy",
    bootstrap: Annotated[int, HELP("--bootstrap", min=0, max=1_000_000)] = 10_000,
    seed: Annotated[int, HELP("--seed", min=0)] = 0,
    json_: Annotated[bool, HELP("--json")] = False,
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
    print_result(result, json_, screen.compare)
