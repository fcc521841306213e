"""`ffnlp explain collapse`: a network without non-linearities is a single layer.

Its own module (mounted under `ffnlp explain` by ffnlp.cli.explain) so that the explain commands
can grow side by side.
"""

from pathlib import Path

import typer

from ffnlp.cli.common import print_json, screen


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
    from ffnlp.inspect.collapse import collapsed_classifier, compare, describe  # imports torch
    from ffnlp.tasks.classify import load, read_split  # imports torch

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
    screen.collapse(run, report)
