"""The page of one run: its figures, its plots, its epochs and its configuration; and writing a
report page into a folder (atomically, never through a link out of it)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ffnlp.errors import ModelFileError
from ffnlp.fileio import check_target, write_atomic
from ffnlp.folders.layout import CONFIG, METRICS, PLOTS, REPORT
from ffnlp.outputs import check_output_file
from ffnlp.report.fields import read_records
from ffnlp.report.markup import EMPTY, Html, cat, document, el, img, muted, number, table
from ffnlp.report.page import own_file, own_text
from ffnlp.report.plots import page_drawing


def metrics_table(summary: dict[str, Any]) -> Html:
    splits = [s for s in ("train", "dev", "test") if isinstance(summary.get(s), dict)]
    if not splits:
        return EMPTY
    names: list[str] = []
    for s in splits:
        for k, v in summary[s].items():
            if isinstance(v, (int, float)) and k not in names:
                names.append(k)
    return table(["split", *names], ([s, *(summary[s].get(n, "") for n in names)] for s in splits))


PER_LABEL_ROWS = 50  # multi-label runs: the most frequent labels in the per-label table
PER_CLASS_HEAD = ["label", "precision", "recall", "F1", "support"]


def _per_class_rows(table: dict[str, Any]) -> list[list[Any]]:
    return [
        [lab, v.get("precision", ""), v.get("recall", ""), v.get("f1", ""), v.get("support", "")]
        for lab, v in table.items()
    ]


def _per_label(summary: dict[str, Any]) -> Html:
    """Multi-label runs (no confusion matrix): P/R/F1 at the threshold of the most frequent labels."""
    out = []
    for split in ("dev", "test"):
        m = summary.get(split)
        if not isinstance(m, dict) or "per_class" not in m:
            continue
        per_class = m["per_class"]
        top = sorted(per_class.items(), key=lambda kv: (-kv[1].get("support", 0), kv[0]))
        top = top[:PER_LABEL_ROWS]
        out.append(
            el("h3", f"Per label ({split}): the {len(top)} most frequent of {len(per_class)}")
        )
        out.append(table(PER_CLASS_HEAD, _per_class_rows(dict(top))))
    return cat(*out)


def _confusion(summary: dict[str, Any]) -> Html:
    if summary.get("multilabel"):
        return _per_label(summary)
    out = []
    labels = summary.get("labels")
    for split in ("dev", "test"):
        m = summary.get(split)
        if not isinstance(m, dict) or "confusion" not in m or not labels:
            continue
        out.append(el("h3", f"Confusion matrix ({split})"))
        out.append(
            table(
                ["gold \\ predicted", *labels],
                ([labels[i], *cells] for i, cells in enumerate(m["confusion"])),
            )
        )
        if "per_class" in m:
            out.append(table(PER_CLASS_HEAD, _per_class_rows(m["per_class"])))
    return cat(*out)


def _warnings(summary: dict[str, Any]) -> Html:
    """The advice train.diagnostics gave during training (summary.json "warnings")."""
    warnings = summary.get("warnings") or []
    if not warnings:
        return EMPTY
    return el("h2", "Warnings") + el("ul", *(el("li", w) for w in warnings))


def run_images(run_dir: Path) -> Html:
    """The run's plots/*.png as <h3> + <img> pairs, embedded."""
    parts = []
    plots = run_dir / PLOTS
    if plots.is_symlink() or not plots.is_dir():
        return EMPTY
    try:
        files = sorted(p for p in plots.iterdir() if p.suffix == ".png")
    except OSError as exc:
        raise ModelFileError(f"{plots} cannot be read ({exc.strerror or exc})") from None
    for png in files:
        if not own_file(run_dir, png):
            continue
        try:
            data = png.read_bytes()
        except OSError as exc:
            raise ModelFileError(f"{png} cannot be read ({exc.strerror or exc})") from None
        parts.append(el("h3", png.stem) + img(data, png.stem))
    return cat(*parts)


def _epochs_table(run_dir: Path) -> Html:
    path = run_dir / METRICS
    if not own_file(run_dir, path):
        return EMPTY
    epochs = [r for r in read_records(path) if r.get("event") == "epoch"]
    if not epochs:
        return EMPTY
    dev_keys = [k for k, v in (epochs[0].get("dev") or {}).items() if isinstance(v, (int, float))]
    head = ["epoch", "step", "train loss", *(f"dev {k}" for k in dev_keys), "lr", "examples/s"]
    rows = (
        [
            r.get("epoch", ""),
            r.get("step", ""),
            (r.get("train") or {}).get("loss", ""),
            *((r.get("dev") or {}).get(k, "") for k in dev_keys),
            number(r.get("lr", ""), ".3g"),
            number(r.get("examples_per_second", ""), ".0f"),
        ]
        for r in epochs
    )
    return table(head, rows)


# what a file that fields.py lets through may still make the page builder raise (the last
# guard: each such case is a field to check in fields.py)
DAMAGED: tuple[type[Exception], ...] = (TypeError, KeyError, ValueError, IndexError, AttributeError)


def write_page(
    run_dir: Path, out: str | Path | None, make: Callable[[Path], str], damaged: str
) -> Path:
    """Write the page ``make(target)`` makes (atomically; in the folder, never through a link
    out of it); the errors of a file that is not what ffnlp wrote become a ModelFileError."""
    if out is not None:
        target = check_output_file(out, "--out")
    else:  # before the work: a link or a folder in its place is refused
        target = check_target(run_dir / REPORT, within=run_dir)
    try:
        with page_drawing():
            page = make(target)
    except DAMAGED as exc:
        raise ModelFileError(f"{damaged} ({exc!r}); retrain the run or restore the files") from None
    if out is not None:
        return write_atomic(target, page)
    return write_atomic(target, page, within=run_dir)


def run_page(run_dir: Path, summary: dict[str, Any]) -> str:
    config = own_text(run_dir, run_dir / CONFIG)
    scalars = {k: v for k, v in summary.items() if not isinstance(v, (dict, list))}
    samples = summary.get("samples") or []
    samples_html = (
        el("h2", "Samples") + el("ol", *(el("li", s) for s in samples)) if samples else EMPTY
    )
    return document(
        f"ffnlp run {run_dir.name}",
        el("h1", f"ffnlp {summary.get('task', '')} run: {run_dir}"),
        el("h2", "Results"),
        metrics_table(summary),
        table(None, scalars.items()),
        _confusion(summary),
        _warnings(summary),
        el("h2", "Training"),
        _epochs_table(run_dir),
        run_images(run_dir),
        samples_html,
        el("h2", "Configuration"),
        muted("Re-run with ", el("code", f"--config {run_dir / 'config.toml'}")),
        el("pre", config),
    )
