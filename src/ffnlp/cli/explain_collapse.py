"""`ffnlp explain collapse`: a network without non-linearities is a single layer.

Its own module (mounted under `ffnlp explain` by ffnlp.cli.main) so that the explain commands
can grow side by side.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from ffnlp.cli.common import out_console, print_json


def collapse(
    run: Path = typer.Argument(
        ..., help="Run directory of a trained classifier (mlp, pooled or logreg)."
    ),
    data: Path = typer.Option(
        None, "--data", help="Labelled data to run the network and its collapsed layer on."
    ),
    json_: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """The single layer W0 x + b0 a linear network equals (W0 = WL...W2 W1, b0 = WL(...W2 b1 + b2...) + bL), and its outputs against the network's.

    Only a network with no non-linearity between its layers collapses (model.mlp.activation =
    "identity"; dropout is the identity at evaluation). With --data, both are run on the same
    examples: the largest difference between their logits, and both accuracies.

    Example:

        ffnlp explain collapse runs/sst2_linear --data ../shared/data/sst2/stsa.binary.dev
    """
    from ffnlp.inspect.collapse import collapsed_classifier, compare, describe
    from ffnlp.tasks.classify import load, read_split

    clf = load(run)
    if data is None:
        network, _ = collapsed_classifier(clf.model)
        report = describe(clf.model, network)
    else:
        split = read_split(data, clf.config)
        report = compare(clf.model, clf.source(split.texts, split.labels))
        report["data"] = str(data)
    if json_:
        print_json(report)
        return
    _print(run, report)


def _print(run: Path, report: dict[str, Any]) -> None:
    layers = report["layers"]
    out_console.print(f"{run}: {len(layers)} affine layer(s), input side first")
    table = Table()
    for col in ("", "layer", "weight"):
        table.add_column(col)
    for i, layer in enumerate(layers, start=1):
        table.add_row(f"W{i}", layer["name"], " x ".join(str(s) for s in layer["weight"]))
    out_console.print(table)
    if report["pass_through"]:
        out_console.print(
            f"Identity when evaluated (left out): {', '.join(report['pass_through'])}."
        )
    chain = " ".join(f"W{i}" for i in range(len(layers), 0, -1))
    k, f = report["collapsed_weight"]
    out_console.print(
        f"Collapsed: W0 = {chain}, {k} x {f} over the {report['input']}, plus b0 ({k}): "
        f"{report['network_parameters']:,} parameters -> {report['collapsed_parameters']:,}."
    )
    if "examples" in report:
        out_console.print(
            f"On {report['data']} ({report['examples']} examples): max |network - collapsed| "
            f"logit difference {report['max_abs_diff']:.2e} (largest |logit| "
            f"{report['max_abs_logit']:.3g}); accuracy: network "
            f"{report['network_accuracy']:.4f}, collapsed layer {report['collapsed_accuracy']:.4f} "
            f"(same prediction on {report['agreement']:.2%})."
        )
