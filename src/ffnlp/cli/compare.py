"""`ffnlp compare A B`: is the difference between two configurations real?"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ffnlp.cli.common import out_console, print_json
from ffnlp.runs.layout import ARCH, SUMMARY


def compare(
    run_a: Path = typer.Argument(
        ..., help="A classifier run directory, or an `ffnlp repeat` folder."
    ),
    run_b: Path = typer.Argument(..., help="The other one (of the same kind)."),
    data: Path = typer.Option(
        None,
        "--data",
        help="Two classifier runs: labelled data to test both on (default: the predictions.jsonl "
        "each wrote for its --test data).",
    ),
    metric: str = typer.Option(
        "test.accuracy", "--metric", help="Two repeat folders: the figure to compare."
    ),
    bootstrap: int = typer.Option(
        10_000,
        "--bootstrap",
        min=0,
        max=1_000_000,
        help="Two classifier runs: resamples of the paired bootstrap of B - A (0 = none; at "
        "most 1,000,000).",
    ),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the bootstrap's resamples."),
    json_: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Compare two runs: two classifiers on the same test examples (McNemar's exact test and a
    paired bootstrap of the accuracy and macro-F1 differences), or two `ffnlp repeat` folders
    (a permutation test over seeds).

    Two classifier runs are compared on --data, or without it on the predictions.jsonl that each
    wrote for its test data (same examples, same order).

    Example:

        ffnlp compare runs/sst2_logreg runs/sst2_ffnn --data ../shared/data/sst2/stsa.binary.test
    """
    from ffnlp.experiments.compare import compare_classifiers, compare_repeats

    is_repeat = (run_a / SUMMARY).is_file() and not (run_a / ARCH).is_file()
    if is_repeat:
        result = compare_repeats(run_a, run_b, metric)
    else:
        result = compare_classifiers(run_a, run_b, data, resamples=bootstrap, seed=seed)
    if json_:
        print_json(result)
        return
    a, b = result["a"], result["b"]
    if result["test"] == "mcnemar_exact":
        name = result["metric"]
        out_console.print(f"A {a['run']}: {name} {a[name]:.4f}\nB {b['run']}: {name} {b[name]:.4f}")
        out_console.print(
            f"only A right on {result['only_a_right']}, only B right on {result['only_b_right']} "
            f"of {result['examples']}; McNemar exact p = {result['p_value']:.4g}"
        )
        if "bootstrap" in result:
            _print_bootstrap(result["bootstrap"])
    else:
        out_console.print(
            f"A {a['run']}: mean {a['mean']:.4f} over {len(a['values'])} seeds\n"
            f"B {b['run']}: mean {b['mean']:.4f} over {len(b['values'])} seeds"
        )
        out_console.print(f"{result['metric']}: permutation test p = {result['p_value']:.4g}")


def _print_bootstrap(boot: dict[str, Any]) -> None:
    out_console.print(
        f"paired bootstrap, B - A ({boot['resamples']:,} resamples, seed {boot['seed']}; 95% "
        "percentile interval):",
        markup=False,
        soft_wrap=True,
    )
    for name, figure in boot.items():
        if isinstance(figure, dict):
            low, high = figure["ci95"]
            out_console.print(
                f"  {name} {figure['difference']:+.4f} [{low:+.4f}, {high:+.4f}] "
                f"p = {figure['p_value']:.4g}",
                markup=False,
                soft_wrap=True,
            )
