"""report.html: a self-contained page (plots embedded) describing one run directory."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from ffnlp.errors import ModelFileError
from ffnlp.fileio import write_atomic
from ffnlp.models.io import run_path
from ffnlp.outputs import check_output_file
from ffnlp.tasks.runfolder import read_summary
from ffnlp.training.history import read_metrics

STYLE = """
body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;color:#222;line-height:1.45}
h1{font-size:1.5em}h2{font-size:1.15em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
pre{background:#f7f7f7;padding:.8em;overflow-x:auto;font-size:.85em}img{max-width:100%}
.muted{color:#777}
"""


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    return html.escape(str(v))


def _metrics_table(summary: dict[str, Any]) -> str:
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
        + "".join(f"<td>{_fmt(summary[s].get(n, ''))}</td>" for n in names)
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
            f"<tr><td>{html.escape(lab)}</td><td>{_fmt(v['precision'])}</td><td>{_fmt(v['recall'])}</td>"
            f"<td>{_fmt(v['f1'])}</td><td>{v['support']}</td></tr>"
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
                f"<tr><td>{html.escape(lab)}</td><td>{_fmt(v['precision'])}</td><td>{_fmt(v['recall'])}</td>"
                f"<td>{_fmt(v['f1'])}</td><td>{v['support']}</td></tr>"
                for lab, v in m["per_class"].items()
            )
            out.append(
                "<table><tr><th>label</th><th>precision</th><th>recall</th><th>F1</th>"
                f"<th>support</th></tr>{rows}</table>"
            )
    return "".join(out)


def _own_file(run_dir: Path, path: Path) -> bool:
    """Whether ``path`` is a regular file of the run folder itself: a symbolic link (which may
    point anywhere) is never read into the report."""
    if path.is_symlink() or not path.is_file():
        return False
    try:
        path.resolve().relative_to(run_dir.resolve())
    except ValueError:  # a folder on the way is a link out of the run
        return False
    return True


def _own_text(run_dir: Path, path: Path) -> str:
    """The text of one of the run's own files ("" when it has none)."""
    if not _own_file(run_dir, path):
        return ""
    try:
        return path.read_bytes().decode("utf-8", "replace")
    except OSError as exc:
        raise ModelFileError(f"{path} cannot be read ({exc.strerror or exc})") from None


def _warnings(summary: dict[str, Any]) -> str:
    """The advice train.diagnostics gave during training (summary.json "warnings")."""
    warnings = summary.get("warnings") or []
    if not warnings:
        return ""
    items = "".join(f"<li>{html.escape(str(w))}</li>" for w in warnings)
    return f"<h2>Warnings</h2><ul>{items}</ul>"


def _images(run_dir: Path) -> str:
    parts = []
    plots = run_dir / "plots"
    if plots.is_symlink() or not plots.is_dir():
        return ""
    try:
        files = sorted(p for p in plots.iterdir() if p.suffix == ".png")
    except OSError as exc:
        raise ModelFileError(f"{plots} cannot be read ({exc.strerror or exc})") from None
    for png in files:
        if not _own_file(run_dir, png):
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
    if not _own_file(run_dir, path):
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
        f"<tr><td>{r['epoch']}</td><td>{r['step']}</td><td>{_fmt(r['train']['loss'])}</td>"
        + "".join(f"<td>{_fmt((r.get('dev') or {}).get(k, ''))}</td>" for k in dev_keys)
        + f"<td>{r['lr']:.3g}</td><td>{r['examples_per_second']:.0f}</td></tr>"
        for r in epochs
    )
    return f"<table>{head}{rows}</table>"


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write ``run_dir/report.html`` (or ``out``) from the files of a run directory.

    Only the run folder's own files are read (no symbolic link is followed); a damaged
    summary.json or metrics.jsonl is a ModelFileError naming it."""
    run_dir = run_path(run_dir)
    target = check_output_file(out, "--out") if out is not None else run_dir / "report.html"
    summary = read_summary(run_dir, required=True)
    try:
        page = _page(run_dir, summary)
    except (TypeError, KeyError, ValueError, IndexError, AttributeError) as exc:
        raise ModelFileError(
            f"{run_dir / 'summary.json'} or metrics.jsonl does not hold what ffnlp writes "
            f"({exc!r}); retrain the run or restore the files"
        ) from None
    if out is not None:  # atomic; in the run, never through a link out of it
        return write_atomic(target, page)
    return write_atomic(target, page, within=run_dir)


def _page(run_dir: Path, summary: dict[str, Any]) -> str:
    config = _own_text(run_dir, run_dir / "config.toml")
    scalars = {k: v for k, v in summary.items() if not isinstance(v, (dict, list))}
    facts = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{_fmt(v)}</td></tr>" for k, v in scalars.items()
    )
    samples = summary.get("samples") or []
    samples_html = ""
    if samples:
        items = "".join(f"<li>{html.escape(str(s))}</li>" for s in samples)
        samples_html = f"<h2>Samples</h2><ol>{items}</ol>"
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>ffnlp run {html.escape(run_dir.name)}</title><style>{STYLE}</style></head><body>
<h1>ffnlp {html.escape(str(summary.get("task", "")))} run: {html.escape(str(run_dir))}</h1>
<h2>Results</h2>{_metrics_table(summary)}<table>{facts}</table>
{_confusion(summary)}
{_warnings(summary)}
<h2>Training</h2>{_epochs_table(run_dir)}{_images(run_dir)}
{samples_html}
<h2>Configuration</h2><p class="muted">Re-run with <code>--config {html.escape(str(run_dir / "config.toml"))}</code></p>
<pre>{html.escape(config)}</pre>
</body></html>"""
    return page
