"""`ffnlp compare A B`: is the difference between two configurations real?"""

from __future__ import annotations

from pathlib import Path

import typer

from ffnlp.cli.common import out_console, print_json


def compare(
    run_a: Path = typer.Argument(
        ..., help="A classifier run directory, or an `ffnlp repeat` folder."
    ),
    run_b: Path = typer.Argument(..., help="The other one (of the same kind)."),
    data: Path = typer.Option(
        None, "--data", help="Two classifier runs: labelled data to test both on (McNemar)."
    ),
    metric: str = typer.Option(
        "test.accuracy", "--metric", help="Two repeat folders: the figure to compare."
    ),
    json_: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Compare two runs: McNemar's exact test (two classifiers on --data) or a permutation
    test over seeds (two `ffnlp repeat` folders).

    Example:

        ffnlp compare runs/sst2_logreg runs/sst2_ffnn --data ../shared/data/sst2/stsa.binary.test
    """
    from ffnlp.errors import ConfigError
    from ffnlp.experiments.compare import compare_classifiers, compare_repeats

    is_repeat = (run_a / "summary.json").is_file() and not (run_a / "model.json").is_file()
    if is_repeat:
        result = compare_repeats(run_a, run_b, metric)
    else:
        if data is None:
            raise ConfigError(
                "comparing two classifier runs needs --data FILE (labelled examples to test both on)"
            )
        result = compare_classifiers(run_a, run_b, data)
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
    else:
        out_console.print(
            f"A {a['run']}: mean {a['mean']:.4f} over {len(a['values'])} seeds\n"
            f"B {b['run']}: mean {b['mean']:.4f} over {len(b['values'])} seeds"
        )
        out_console.print(f"{result['metric']}: permutation test p = {result['p_value']:.4g}")
