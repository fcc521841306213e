"""report.html: a self-contained page (plots embedded) describing one run directory."""

from __future__ import annotations

import base64
import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ffnlp.errors import ModelFileError
from ffnlp.fileio import check_target, write_atomic
from ffnlp.models.io import run_path
from ffnlp.outputs import check_output_file
from ffnlp.report.group import group_kind, group_page
from ffnlp.report.page import STYLE, fmt, own_file, own_text
from ffnlp.report.study import study_page
from ffnlp.report.studyfolder import is_study, read_study
from ffnlp.tasks.runfolder import read_summary
from ffnlp.training.history import read_metrics


def metrics_table(summary: dict[str, Any]) -> str:
    splits = [s for s in ("train", "dev", "test") if isinstance(summary.get(s), dict)]
    if not splits:
        return ""
    names: list[str] = []
    for s in splits:
        for k, v in summary[s].items():
            if isinstance(v, (int, float)) and k not in names:
                names.append(k)
    rows = "".join(
        "<tr><td>"
        + s
        + "</td>"
        + "".join(f"<td>{fmt(summary[s].get(n, ''))}</td>" for n in names)
        + "</tr>"
        for s in splits
    )
    head = "<tr><th>split</th>" + "".join(f"<th>{html.escape(n)}</th>" for n in names) + "</tr>"
    return f"<table>{head}{rows}</table>"


PER_LABEL_ROWS = 50  # multi-label runs: the most frequent labels in the per-label table


def _per_label(summary: dict[str, Any]) -> str:
    """Multi-label runs (no confusion matrix): P/R/F1 at the threshold of the most frequent labels."""
    out = []
    for split in ("dev", "test"):
        m = summary.get(split)
        if not isinstance(m, dict) or "per_class" not in m:
            continue
        table = m["per_class"]
        rows = sorted(table.items(), key=lambda kv: (-kv[1]["support"], kv[0]))[:PER_LABEL_ROWS]
        body = "".join(
            f"<tr><td>{html.escape(lab)}</td><td>{fmt(v['precision'])}</td><td>{fmt(v['recall'])}</td>"
            f"<td>{fmt(v['f1'])}</td><td>{v['support']}</td></tr>"
            for lab, v in rows
        )
        out.append(
            f"<h3>Per label ({split}): the {len(rows)} most frequent of {len(table)}</h3>"
            "<table><tr><th>label</th><th>precision</th><th>recall</th><th>F1</th>"
            f"<th>support</th></tr>{body}</table>"
        )
    return "".join(out)


def _confusion(summary: dict[str, Any]) -> str:
    if summary.get("multilabel"):
        return _per_label(summary)
    out = []
    labels = summary.get("labels")
    for split in ("dev", "test"):
        m = summary.get(split)
        if not isinstance(m, dict) or "confusion" not in m or not labels:
            continue
        head = (
            "<tr><th>gold \\ predicted</th>"
            + "".join(f"<th>{html.escape(str(lab))}</th>" for lab in labels)
            + "</tr>"
        )
        body = "".join(
            f"<tr><td>{html.escape(str(labels[i]))}</td>"
            + "".join(f"<td>{c}</td>" for c in row)
            + "</tr>"
            for i, row in enumerate(m["confusion"])
        )
        out.append(f"<h3>Confusion matrix ({split})</h3><table>{head}{body}</table>")
        if "per_class" in m:
            rows = "".join(
                f"<tr><td>{html.escape(lab)}</td><td>{fmt(v['precision'])}</td><td>{fmt(v['recall'])}</td>"
                f"<td>{fmt(v['f1'])}</td><td>{v['support']}</td></tr>"
                for lab, v in m["per_class"].items()
            )
            out.append(
                "<table><tr><th>label</th><th>precision</th><th>recall</th><th>F1</th>"
                f"<th>support</th></tr>{rows}</table>"
            )
    return "".join(out)


def _warnings(summary: dict[str, Any]) -> str:
    """The advice train.diagnostics gave during training (summary.json "warnings")."""
    warnings = summary.get("warnings") or []
    if not warnings:
        return ""
    items = "".join(f"<li>{html.escape(str(w))}</li>" for w in warnings)
    return f"<h2>Warnings</h2><ul>{items}</ul>"


def run_images(run_dir: Path) -> str:
    """The run's plots/*.png as <h3> + <img> pairs, embedded."""
    parts = []
    plots = run_dir / "plots"
    if plots.is_symlink() or not plots.is_dir():
        return ""
    try:
        files = sorted(p for p in plots.iterdir() if p.suffix == ".png")
    except OSError as exc:
        raise ModelFileError(f"{plots} cannot be read ({exc.strerror or exc})") from None
    for png in files:
        if not own_file(run_dir, png):
            continue
        try:
            data = base64.b64encode(png.read_bytes()).decode("ascii")
        except OSError as exc:
            raise ModelFileError(f"{png} cannot be read ({exc.strerror or exc})") from None
        parts.append(
            f"<h3>{html.escape(png.stem)}</h3><img alt='{html.escape(png.stem)}' "
            f"src='data:image/png;base64,{data}'>"
        )
    return "".join(parts)


def _epochs_table(run_dir: Path) -> str:
    path = run_dir / "metrics.jsonl"
    if not own_file(run_dir, path):
        return ""
    try:
        records = read_metrics(path)
    except (OSError, ValueError) as exc:  # unreadable, not UTF-8, not JSON
        raise ModelFileError(f"{path} cannot be read ({exc}); the file is damaged") from None
    epochs = [r for r in records if isinstance(r, dict) and r.get("event") == "epoch"]
    if not epochs:
        return ""
    dev_keys = [k for k, v in (epochs[0].get("dev") or {}).items() if isinstance(v, (int, float))]
    head = (
        "<tr><th>epoch</th><th>step</th><th>train loss</th>"
        + "".join(f"<th>dev {html.escape(k)}</th>" for k in dev_keys)
        + "<th>lr</th><th>examples/s</th></tr>"
    )
    rows = "".join(
        f"<tr><td>{r['epoch']}</td><td>{r['step']}</td><td>{fmt(r['train']['loss'])}</td>"
        + "".join(f"<td>{fmt((r.get('dev') or {}).get(k, ''))}</td>" for k in dev_keys)
        + f"<td>{r['lr']:.3g}</td><td>{r['examples_per_second']:.0f}</td></tr>"
        for r in epochs
    )
    return f"<table>{head}{rows}</table>"


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the HTML report of a folder ffnlp made: ``DIR/report.html`` (or ``out``).

    The folder is a run, a group of runs of one configuration (``ffnlp repeat``, ``ffnlp
    classify cv``: its summary.json says so, see :mod:`ffnlp.report.group`) or an ``ffnlp tune``
    study (its tune.json says so, see :mod:`ffnlp.report.study`). Only the folder's own files are
    read (no symbolic link is followed); a damaged file is a ModelFileError naming it."""
    run_dir = run_path(run_dir)
    if is_study(run_dir):
        return _write(
            run_dir,
            out,
            lambda page: study_page(read_study(run_dir), page),
            f"{run_dir / 'tune.json'}, trials.csv or a trial's files do not hold what ffnlp "
            "tune writes",
        )
    return write_run_report(run_dir, out)


def write_run_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the report of a run folder, or of a repeat or cv folder (see :func:`write_report`)."""
    run_dir = run_path(run_dir)
    summary = read_summary(run_dir, required=True)
    kind = group_kind(summary)
    return _write(
        run_dir,
        out,
        (lambda page: group_page(run_dir, summary, kind, page))
        if kind is not None
        else (lambda page: _page(run_dir, summary)),
        f"{run_dir / 'summary.json'} or metrics.jsonl does not hold what ffnlp writes",
    )


def _write(
    run_dir: Path, out: str | Path | None, make: Callable[[Path], str], damaged: str
) -> Path:
    """Write the page ``make(target)`` makes (atomically; in the folder, never through a link
    out of it); the errors of a file that is not what ffnlp wrote become a ModelFileError."""
    if out is not None:
        target = check_output_file(out, "--out")
    else:  # before the work: a link or a folder in its place is refused
        target = check_target(run_dir / "report.html", within=run_dir)
    try:
        page = make(target)
    except (TypeError, KeyError, ValueError, IndexError, AttributeError) as exc:
        raise ModelFileError(f"{damaged} ({exc!r}); retrain the run or restore the files") from None
    if out is not None:
        return write_atomic(target, page)
    return write_atomic(target, page, within=run_dir)


def _page(run_dir: Path, summary: dict[str, Any]) -> str:
    config = own_text(run_dir, run_dir / "config.toml")
    scalars = {k: v for k, v in summary.items() if not isinstance(v, (dict, list))}
    facts = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{fmt(v)}</td></tr>" for k, v in scalars.items()
    )
    samples = summary.get("samples") or []
    samples_html = ""
    if samples:
        items = "".join(f"<li>{html.escape(str(s))}</li>" for s in samples)
        samples_html = f"<h2>Samples</h2><ol>{items}</ol>"
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>ffnlp run {html.escape(run_dir.name)}</title><style>{STYLE}</style></head><body>
<h1>ffnlp {html.escape(str(summary.get("task", "")))} run: {html.escape(str(run_dir))}</h1>
<h2>Results</h2>{metrics_table(summary)}<table>{facts}</table>
{_confusion(summary)}
{_warnings(summary)}
<h2>Training</h2>{_epochs_table(run_dir)}{run_images(run_dir)}
{samples_html}
<h2>Configuration</h2><p class="muted">Re-run with <code>--config {html.escape(str(run_dir / "config.toml"))}</code></p>
<pre>{html.escape(config)}</pre>
</body></html>"""
    return page
