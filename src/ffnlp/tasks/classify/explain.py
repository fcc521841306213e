"""What `ffnlp explain dead` and `ffnlp explain collapse` show of a classifier run: its network
run on labelled data by :mod:`ffnlp.inspect.diagnostics` and :mod:`ffnlp.inspect.collapse`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ffnlp.inspect.collapse import collapsed_classifier, compare, describe
from ffnlp.inspect.diagnostics import dead_units
from ffnlp.tasks.classify.data import read_split
from ffnlp.tasks.classify.result import load


def dead_units_of_run(run: str | Path, data: str | Path) -> dict[str, Any]:
    """The hidden units of the classifier in ``run`` that output zero for every text of ``data``
    (its inputs only: no label is read)."""
    clf = load(run)
    examples = read_split(data, clf.config)
    return dead_units(clf.model, clf.source(examples.texts))


def collapse_run(run: str | Path, data: str | Path | None = None) -> dict[str, Any]:
    """The single layer the network of the classifier in ``run`` equals; with ``data``, both run
    on its examples (the largest difference between their logits, both accuracies)."""
    clf = load(run)
    if data is None:
        network, _ = collapsed_classifier(clf.model)
        return describe(clf.model, network)
    split = read_split(data, clf.config)
    return {**compare(clf.model, clf.source(split.texts, split.labels)), "data": str(data)}
