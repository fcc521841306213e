"""The files a report reads, checked against what ffnlp writes before a page is built.

summary.json, metrics.jsonl, tune.json and rescore.json are user input like any run file: edited,
copied from another version, or crafted. Each part a report reads is checked here for the type it
must have (an object, a list, a whole number, a number, a string); a wrong one is one
:class:`ModelFileError` that names the file, the line (metrics.jsonl) and the field
(``dev.confusion[1][0]``), never a TypeError from deep inside the page. Fields a report does not
read are not looked at, and text fields may hold anything (the page escapes all of it).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ffnlp.errors import ModelFileError

OBJECT, LIST, STRING, INTEGER, NUMBER, BOOLEAN = (
    "an object",
    "a list",
    "a string",
    "a whole number (below 2^53)",
    "a number",
    "true or false",
)
STEP_MAX = 2**53  # steps, epochs, seeds, folds, trial numbers: exact as floats (the plots' axes)
NUMBER_MAX = 10**300
SPLITS = ("train", "dev", "test")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, int) and abs(value) >= STEP_MAX:
        return f"a whole number of {len(str(abs(value)))} digits"
    if isinstance(value, float) and value.is_integer():
        return f"the number {value!r}"
    return "a number"


def _fits(value: Any, kind: str) -> bool:
    if kind == OBJECT:
        return isinstance(value, dict)
    if kind == LIST:
        return isinstance(value, list)
    if kind == STRING:
        return isinstance(value, str)
    if kind == BOOLEAN:
        return isinstance(value, bool)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if kind == INTEGER:
        return isinstance(value, int) and abs(value) < STEP_MAX
    # NUMBER: nan and inf are numbers ffnlp may write (a diverged run); a whole number must
    # convert to a float (the plots and the statistics compute in floats)
    return not isinstance(value, int) or abs(value) <= NUMBER_MAX


class Checker:
    """Checks fields of one file (and line); every failure names both."""

    def __init__(self, path: Path, line: int | None = None) -> None:
        self.path = path
        self.line = line

    def fail(self, field: str, must: str) -> ModelFileError:
        where = f"{self.path}" + (f" line {self.line}" if self.line is not None else "")
        return ModelFileError(
            f"{where}: {field} {must}; the file is not what ffnlp writes (retrain the run or "
            "restore the file)"
        )

    def need(self, value: Any, field: str, *kinds: str) -> Any:
        """``value`` when it is of one of ``kinds`` (``None`` allowed when a kind is "null")."""
        if value is None and "null" in kinds:
            return value
        if any(_fits(value, k) for k in kinds if k != "null"):
            return value
        must = " or ".join(k for k in kinds)
        raise self.fail(field, f"must be {must}, not {_kind(value)}")

    def opt(self, parent: dict[str, Any], key: str, field: str, *kinds: str) -> Any:
        """``parent[key]`` checked when present (None when absent)."""
        if key not in parent:
            return None
        return self.need(parent[key], f"{field}{key}", *kinds)

    def figures(self, scores: dict[str, Any], field: str) -> None:
        """Every number among the values of ``scores`` one a float can hold."""
        for key, value in scores.items():
            if isinstance(value, int) and not isinstance(value, bool):
                self.need(value, f"{field}{key}", NUMBER)

    def items(self, values: Any, field: str, *kinds: str) -> None:
        """Every item of the list ``values`` of one of ``kinds``."""
        for i, v in enumerate(values):
            self.need(v, f"{field}[{i}]", *kinds)


def check_summary(summary: dict[str, Any], path: Path) -> dict[str, Any]:
    """A run's, repeat folder's or cv folder's summary.json, as far as a report reads it."""
    c = Checker(path)
    c.opt(summary, "task", "", STRING)
    c.opt(summary, "multilabel", "", BOOLEAN, "null")
    labels = c.opt(summary, "labels", "", LIST)
    if labels is not None:
        c.items(labels, "labels", STRING, NUMBER)
    for key in ("warnings", "samples", "seeds"):
        c.opt(summary, key, "", LIST)
    c.opt(summary, "config", "", OBJECT)
    for split in SPLITS:
        scores = c.opt(summary, split, "", OBJECT)
        if scores is not None:
            c.figures(scores, f"{split}.")
            _check_scores(c, scores, f"{split}.", labels)
    runs = c.opt(summary, "runs", "", LIST)
    rounds = c.opt(summary, "rounds", "", LIST)
    for name, rows in (("runs", runs), ("rounds", rounds)):
        for i, row in enumerate(rows or []):
            field = f"{name}[{i}]"
            c.need(row, field, OBJECT)
            for key in ("seed", "fold"):
                c.opt(row, key, f"{field}.", INTEGER)
            c.figures(row, f"{field}.")
            if name == "runs" or str(summary.get("task", "")).endswith("-seeds"):
                for split in SPLITS:  # a cv round's "train", "dev", "test" are sizes
                    scores = c.opt(row, split, f"{field}.", OBJECT)
                    if scores is not None:
                        c.figures(scores, f"{field}.{split}.")
    c.figures(summary, "")
    return summary


def _check_scores(c: Checker, scores: dict[str, Any], field: str, labels: Any) -> None:
    confusion = c.opt(scores, "confusion", field, LIST)
    if confusion is not None:
        size = len(labels) if labels is not None else len(confusion)
        if len(confusion) != size:
            raise c.fail(f"{field}confusion", f"has {len(confusion)} rows for {size} labels")
        for i, cells in enumerate(confusion):
            c.need(cells, f"{field}confusion[{i}]", LIST)
            if len(cells) != size:
                raise c.fail(f"{field}confusion[{i}]", f"has {len(cells)} cells for {size} labels")
            for j, count in enumerate(cells):
                c.need(count, f"{field}confusion[{i}][{j}]", INTEGER)
                if count < 0:
                    raise c.fail(f"{field}confusion[{i}][{j}]", f"is negative ({count})")
    per_class = c.opt(scores, "per_class", field, OBJECT)
    for label, figures in (per_class or {}).items():
        where = f"{field}per_class.{label}"
        c.need(figures, where, OBJECT)
        for key in ("precision", "recall", "f1"):
            c.opt(figures, key, f"{where}.", NUMBER, "null")
        support = c.opt(figures, "support", f"{where}.", INTEGER)
        if support is not None and support < 0:
            raise c.fail(f"{where}.support", f"is negative ({support})")


def read_records(path: Path) -> list[dict[str, Any]]:
    """The records of a metrics.jsonl, each checked as far as a report reads it: an object;
    ``event`` a string; ``epoch`` and ``step`` whole numbers from 0; ``train`` and ``dev``
    objects; ``lr`` and ``examples_per_second`` numbers."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"{path} cannot be read ({exc.strerror or exc})") from None
    records = []
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise ModelFileError(
                f"{path} line {number} is not UTF-8 (byte {exc.start}); the file is damaged"
            ) from None
        except (ValueError, RecursionError) as exc:
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not JSON"
            raise ModelFileError(
                f"{path} line {number} is not JSON ({reason}); the file is damaged"
            ) from None
        records.append(check_record(record, path, number))
    return records


def check_record(record: Any, path: Path, line: int) -> dict[str, Any]:
    """One metrics.jsonl record (see :func:`read_records`)."""
    c = Checker(path, line)
    c.need(record, "the record", OBJECT)
    c.opt(record, "event", "", STRING)
    for key in ("epoch", "step"):
        value = c.opt(record, key, "", INTEGER)
        if value is not None and value < 0:
            raise c.fail(key, f"is negative ({value})")
    for split in ("train", "dev"):
        scores = c.opt(record, split, "", OBJECT, "null")
        if scores is not None:
            c.figures(scores, f"{split}.")
    for key in ("lr", "examples_per_second"):
        c.opt(record, key, "", NUMBER)
    return record


def check_tune(info: dict[str, Any], path: Path) -> dict[str, Any]:
    """A study's tune.json, as far as a report reads it."""
    c = Checker(path)
    for key in ("kind", "task", "metric", "direction", "study_name", "storage"):
        c.opt(info, key, "", STRING, "null")
    command = c.opt(info, "command", "", LIST)
    if command is not None:
        c.items(command, "command", STRING)
    c.opt(info, "space", "", OBJECT)
    return info


def check_rescore(table: dict[str, Any], path: Path) -> dict[str, Any]:
    """A study's rescore.json (the front-runners re-scored with fresh seeds)."""
    c = Checker(path)
    c.opt(table, "metric", "", STRING)
    c.opt(table, "why", "", STRING)
    c.opt(table, "best", "", INTEGER, "null")
    candidates = c.need(table.get("candidates"), "candidates", LIST)
    for i, row in enumerate(candidates):
        field = f"candidates[{i}]"
        c.need(row, field, OBJECT)
        c.need(row.get("number"), f"{field}.number", INTEGER)
        c.opt(row, "search_seeds", f"{field}.", INTEGER)
        for key in ("search_value", "value", "all_seeds", "p_vs_base"):
            c.opt(row, key, f"{field}.", NUMBER, "null")
        values = c.opt(row, "values", f"{field}.", LIST)
        if values is not None:
            c.items(values, f"{field}.values", NUMBER, "null")
        c.opt(row, "base", f"{field}.", BOOLEAN)
    return table
