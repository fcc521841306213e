"""predictions.jsonl: a classifier's answer on every test example, kept in the run folder.

Written by every run that has test data (``classify train --test``, each fold of ``classify cv``
for its held-out part, each seed of ``ffnlp repeat classify``), so that two runs tested on the
same examples can be compared example by example (``ffnlp compare``: McNemar's test and a paired
bootstrap) without their weights. One JSON object a line, in the order of the test data::

    {"index": 0, "label": "1", "prediction": "0", "probabilities": {"0": 0.71, "1": 0.29}}

``label`` is the gold label and ``prediction`` the predicted one (a list of labels for a
multi-label run: the gold labels as written in the data, and every label whose probability
reaches its threshold, most probable first). ``probabilities`` holds every label of the
classifier, in the order of its label set, to :data:`DIGITS` significant digits: enough to give
back the model's float32 probabilities exactly, so that the ranking (and its ties) is the model's.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ffnlp.errors import ModelFileError
from ffnlp.fileio import write_atomic
from ffnlp.folders.layout import PREDICTIONS
from ffnlp.models.protocols import as_classifier, head_of
from ffnlp.text.readers import LabeledData

if TYPE_CHECKING:
    from ffnlp.tasks.classify.result import Classifier

DIGITS = 9  # significant digits that give a float32 back exactly (its shortest form is no longer)


@torch.no_grad()
def prediction_records(clf: Classifier, data: LabeledData) -> list[dict[str, Any]]:
    """One record per example of ``data``, in its order (see the module's docstring). The
    predictions are the model's own, as its evaluation counts them: the most probable class
    (single-label), or the labels at the run's thresholds (multi-label)."""
    source = clf.source(data.texts)
    classifier = as_classifier(clf.model)
    head = head_of(classifier)
    names = clf.labels.labels
    golds: list[Any] = data.label_lists() if clf.multilabel else list(data.labels)
    cut = torch.from_numpy(clf.decision_thresholds())  # (K,) multi-label thresholds
    clf.model.eval()
    records: list[dict[str, Any]] = []
    for batch in source.batches(4096, None):
        logits = classifier.logits(batch)  # (B, K)
        probs = head.probabilities(logits)  # (B, K)
        if clf.multilabel:
            chosen = (probs >= cut.to(probs.dtype)).numpy()  # (B, K)
            order = np.argsort(-probs.numpy(), axis=1, kind="stable")  # (B, K)
            predicted: list[Any] = [
                [names[j] for j in row_order if row_chosen[j]]
                for row_order, row_chosen in zip(order, chosen, strict=True)
            ]
        else:
            predicted = [names[j] for j in head.predict(logits).tolist()]  # (B,)
        for row, prediction in zip(probs.tolist(), predicted, strict=True):
            i = len(records)
            records.append(
                {
                    "index": i,
                    "label": list(golds[i]) if clf.multilabel else golds[i],
                    "prediction": prediction,
                    "probabilities": {
                        name: float(f"{p:.{DIGITS}g}") for name, p in zip(names, row, strict=True)
                    },
                }
            )
    return records


def write_predictions(clf: Classifier, data: LabeledData, run_dir: Path) -> Path:
    """``run_dir/predictions.jsonl`` for ``data``, written atomically."""
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in prediction_records(clf, data))
    return write_atomic(run_dir / PREDICTIONS, lines, within=run_dir)


@dataclass
class Predictions:
    """Prediction records (a predictions.jsonl, or :func:`prediction_records`) as arrays: gold and
    predicted labels, and the (N, K) probabilities."""

    path: Path | str  # where they come from, for messages
    labels: list[str]  # the classifier's label set, the columns of ``probabilities``
    gold: list[Any]  # str per example, or (multi-label) a list of labels
    predicted: list[Any]
    probabilities: np.ndarray  # (N, K)
    multilabel: bool

    def __len__(self) -> int:
        return len(self.gold)

    def top(self) -> list[str]:
        """The most probable label of every example (the first, in label order, on a tie)."""
        return [self.labels[j] for j in np.argmax(self.probabilities, axis=1)]

    @classmethod
    def from_records(cls, records: Iterable[Any], path: Path | str) -> Predictions:
        """Check and gather ``records``; :class:`BadRecord` names the first that is not one."""
        gold: list[Any] = []
        predicted: list[Any] = []
        rows: list[list[float]] = []
        labels: list[str] | None = None
        multilabel = False
        for i, record in enumerate(records):
            try:
                kind = _check_record(record, i)
                if labels is None:
                    labels, multilabel = list(record["probabilities"]), kind
                if list(record["probabilities"]) != labels or kind != multilabel:
                    raise ValueError("another label set or kind than the first record's")
            except (ValueError, TypeError, KeyError) as exc:
                raise BadRecord(i, str(exc)) from None
            gold.append(record["label"])
            predicted.append(record["prediction"])
            rows.append([float(p) for p in record["probabilities"].values()])
        if labels is None:
            raise BadRecord(0, "no record at all")
        return cls(path, labels, gold, predicted, np.asarray(rows, dtype=np.float64), multilabel)


class BadRecord(ValueError):
    """Record ``index`` is not a prediction record (``reason`` says why)."""

    def __init__(self, index: int, reason: str):
        super().__init__(reason)
        self.index = index


def read_predictions(run: str | Path) -> Predictions:
    """The predictions.jsonl of the run folder ``run`` (or that file itself); a missing file or
    a line that is not a record of the kind written here is a ModelFileError naming it."""
    path = Path(run)
    if path.is_dir():
        path = path / PREDICTIONS
    if not path.is_file():
        raise ModelFileError(
            f"{path} is missing: only classifier runs trained with test data (--test, a cv "
            "fold, a repeat seed) have predictions"
        )
    records = []
    try:
        with path.open(encoding="utf-8") as fh:
            for number, line in enumerate(fh, start=1):
                try:
                    records.append(json.loads(line))
                except ValueError as exc:
                    raise BadRecord(number - 1, str(exc)) from None
        if not records:
            raise ModelFileError(f"{path} is empty: the run was tested on no example")
        return Predictions.from_records(records, path)
    except BadRecord as exc:
        raise ModelFileError(
            f"{path}, line {exc.index + 1}: not a prediction record ({exc}); the file is "
            "damaged: retrain the run to write it again"
        ) from None
    except UnicodeDecodeError:
        raise ModelFileError(
            f"{path} is not UTF-8 text; the file is damaged: retrain the run to write it again"
        ) from None


def _check_record(record: Any, index: int) -> bool:
    """Whether the record is multi-label; ValueError/TypeError when it is not a valid record."""
    if not isinstance(record, dict) or record.get("index") != index:
        raise ValueError(f'expected an object with "index": {index}')
    probabilities = record["probabilities"]
    if not isinstance(probabilities, dict) or not probabilities:
        raise ValueError('"probabilities" must map every label to a probability')
    if not all(
        isinstance(p, (int, float)) and not isinstance(p, bool) for p in probabilities.values()
    ):
        raise ValueError("a probability is not a number")
    label, prediction = record["label"], record["prediction"]
    if isinstance(label, str) and isinstance(prediction, str):
        return False
    both_lists = isinstance(label, list) and isinstance(prediction, list)
    if both_lists and all(isinstance(x, str) for x in (*label, *prediction)):
        return True
    raise ValueError('"label" and "prediction" must both be labels, or both lists of labels')
