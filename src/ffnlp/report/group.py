"""The report of a group of runs of one configuration: an `ffnlp repeat` folder (one run per
seed, ``seed_N/``) or an `ffnlp classify cv` folder (one run per fold, ``fold_K/``); a trial of
`ffnlp tune` with several seeds (``TASK-seeds``) or folds (``classify-cv``) is such a folder too.

The page shows mean, sd and a 95% confidence interval of every figure (computed by
:func:`ffnlp.experiments.stats.describe` from the per-run values), the table of every run's
figures, the learning curves of all runs on one plot (the mean in bold), the configuration they
share and a link to each run's own report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ffnlp.config import dump_toml  # noqa: E402
from ffnlp.errors import FfnlpError, ModelFileError  # noqa: E402
from ffnlp.experiments.stats import describe, is_figure  # noqa: E402
from ffnlp.folders.folder import read_summary, run_path  # noqa: E402
from ffnlp.folders.layout import CONFIG, METRICS, SUMMARY  # noqa: E402
from ffnlp.report.fields import INTEGER, OBJECT, Checker, check_summary, read_records  # noqa: E402
from ffnlp.report.markup import (  # noqa: E402
    Html,
    cat,
    document,
    el,
    img,
    link,
    muted,
    note,
    table,
    text,
)
from ffnlp.report.page import own_file, own_text  # noqa: E402
from ffnlp.report.plots import figure_png  # noqa: E402
from ffnlp.report.runpage import run_page, write_page  # noqa: E402
from ffnlp.report.text import literal  # noqa: E402

DEV_METRICS = (
    "accuracy",
    "perplexity",
    "macro_f1",
    "spearman",
)  # the curve's metric, by preference
NOT_FIGURES = {"examples"}  # constant per split: not worth a column
RUN_FACTS = {"epochs": "epochs", "best_epoch": "best epoch", "train_seconds": "train seconds"}


@dataclass(frozen=True)
class Member:
    """One run of the group."""

    name: str  # "seed 3", "fold 2"
    run_dir: Path | None  # None when the folder is gone
    figures: dict[str, float]  # "dev accuracy" -> value
    records: list[dict[str, Any]] = field(default_factory=list)  # its metrics.jsonl


def group_kind(summary: dict[str, Any]) -> str | None:
    """ "repeat" or "cv" for the summary.json of such a folder, else None."""
    task = summary.get("task")
    if isinstance(task, str) and task.endswith("-repeat") and isinstance(summary.get("runs"), list):
        return "repeat"
    if (
        isinstance(task, str)
        and task.endswith("-seeds")
        and isinstance(summary.get("rounds"), list)
    ):
        return "repeat"  # a tune trial over seeds: its rounds are the runs
    if isinstance(task, str) and task.endswith("-cv") and isinstance(summary.get("rounds"), list):
        return "cv"
    return None


def read_members(folder: Path, summary: dict[str, Any], kind: str) -> list[Member]:
    """The runs named by summary.json, each with its figures and metrics.jsonl records."""
    members = []
    listed = "runs" if kind == "repeat" and "runs" in summary else "rounds"
    key = "seed" if kind == "repeat" else "fold"
    check = Checker(folder / SUMMARY)
    for i, row in enumerate(summary[listed]):
        check.need(row, f"{listed}[{i}]", OBJECT)
        check.need(row.get(key), f"{listed}[{i}].{key}", INTEGER)
    if kind == "repeat":
        for row in summary[listed]:
            figures = {
                f"{split} {name}": float(v)
                for split in ("dev", "test")
                for name, v in (row.get(split) or {}).items()
                if is_figure(v) and name not in NOT_FIGURES
            }
            for key in ("epochs", "best_epoch", "train_seconds"):
                if is_figure(row.get(key)):
                    figures[RUN_FACTS.get(key, key)] = float(row[key])
            members.append(_member(folder, f"seed {row['seed']}", f"seed_{row['seed']}", figures))
    else:
        for row in summary["rounds"]:
            figures = {}
            for key, v in row.items():
                if key in ("fold", "train", "dev", "test") or not is_figure(v):
                    continue
                figures[RUN_FACTS.get(key, f"test {key}")] = float(v)  # a round's scores: test
            members.append(_member(folder, f"fold {row['fold']}", f"fold_{row['fold']}", figures))
    return members


def _member(folder: Path, name: str, sub: str, figures: dict[str, float]) -> Member:
    """A run of the group; its folder only when it is a real folder inside ``folder`` (the
    seed or fold number comes from summary.json, which may have been edited)."""
    run_dir = folder / sub
    if not _inside(folder, run_dir):
        return Member(name, None, figures)
    path = run_dir / METRICS
    records: list[dict[str, Any]] = []
    if own_file(folder, path):
        records = read_records(path)
    return Member(name, run_dir, figures, records)


def _base_task(summary: dict[str, Any]) -> str:
    """classify for classify-repeat (or a tune trial's classify-seeds)."""
    return str(summary.get("task", "")).removesuffix("-repeat").removesuffix("-seeds")


def _inside(folder: Path, run_dir: Path) -> bool:
    if run_dir.is_symlink() or not run_dir.is_dir():
        return False
    try:
        run_dir.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return run_dir.resolve() != folder.resolve()


def _columns(members: list[Member]) -> list[str]:
    return list(dict.fromkeys(k for m in members for k in m.figures))


def aggregate_table(members: list[Member]) -> Html:
    """figure | mean | sd | 95% CI | n, over the runs (describe() of the per-run values)."""
    rows = []
    for name in _columns(members):
        values = [m.figures[name] for m in members if name in m.figures]
        d = describe(values)
        ci = f"[{d['ci95'][0]:.4f}, {d['ci95'][1]:.4f}]" if d["n"] > 1 else "—"
        rows.append([name, d["mean"], d["sd"], ci, d["n"]])
    return table(["figure", "mean", "sd", "95% CI of the mean", "n"], rows)


def _cell(name: str, value: float | None) -> Html:
    if value is None:
        return text("")
    if name in ("epochs", "best epoch") and value.is_integer():
        return text(int(value))
    return text(value)


def members_table(members: list[Member], page: Path, reports: dict[str, Path | None]) -> Html:
    """One row per run: its figures and a link to its report."""
    columns = _columns(members)
    rows = []
    for m in members:
        report = reports.get(m.name)
        cell = (
            link(report, page, "report") if report is not None else el("span", "—", class_="muted")
        )
        rows.append([m.name, *(_cell(c, m.figures.get(c)) for c in columns), cell])
    return table(["run", *columns, "report"], rows)


def curve_metric(records: list[dict[str, Any]]) -> str | None:
    """The dev metric to plot: the first of DEV_METRICS the records hold, else the dev loss."""
    keys = {k for r in records for k in (r.get("dev") or {})}
    return next((m for m in DEV_METRICS if m in keys), "loss" if "loss" in keys else None)


def _series(records: list[dict[str, Any]], split: str, key: str) -> tuple[list[int], list[float]]:
    """(steps, values) of records[split][key]; the train loss from the epoch records (the step
    records are single noisy minibatches) when there are any."""
    rows = [r for r in records if _finite((r.get(split) or {}).get(key))]
    if split == "train" and any(r.get("event") == "epoch" for r in rows):
        rows = [r for r in rows if r.get("event") == "epoch"]
    return [int(r["step"]) for r in rows], [float(r[split][key]) for r in rows]


def _finite(value: Any) -> bool:
    """A number a curve can draw (a diverged run's nan or inf is left out)."""
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def mean_curve(curves: list[tuple[list[int], list[float]]]) -> tuple[np.ndarray, np.ndarray]:
    """The mean of several curves over the steps all of them cover (each interpolated linearly
    between its own points: runs stopped early or with other fold sizes log other steps)."""
    curves = [(s, v) for s, v in curves if s]
    if not curves:
        return np.zeros(0), np.zeros(0)
    start = max(s[0] for s, _ in curves)
    end = min(s[-1] for s, _ in curves)
    grid = np.asarray(sorted({x for s, _ in curves for x in s if start <= x <= end}), dtype=float)
    if grid.size == 0:
        return grid, grid
    with np.errstate(all="ignore"):  # values near the float limit overflow to inf
        stacked = np.stack([np.interp(grid, s, v) for s, v in curves])  # (runs, points)
        return grid, stacked.mean(axis=0)


def plot_group_curves(members: list[Member]) -> bytes | None:
    """Dev metric and train loss against the step: one thin line per run, the mean in bold;
    None when no run has metrics.jsonl."""
    with_records = [m for m in members if m.records]
    if not with_records:
        return None
    metric = curve_metric([r for m in with_records for r in m.records])
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    try:
        _draw_curves(with_records, metric, axes)
    except BaseException:
        plt.close(fig)  # figure_png closes it otherwise
        raise
    return figure_png(fig)


def _draw_curves(with_records: list[Member], metric: str | None, axes: Any) -> None:
    panels = [(axes[0], "dev", metric), (axes[1], "train", "loss")]
    colours = plt.get_cmap("tab10")
    for ax, split, key in panels:
        curves = []
        for i, m in enumerate(with_records):
            steps, values = _series(m.records, split, key) if key else ([], [])
            if steps:
                ax.plot(steps, values, color=colours(i % 10), lw=1, alpha=0.6, label=m.name)
                curves.append((steps, values))
        grid, mean = mean_curve(curves)
        if grid.size:
            ax.plot(grid, mean, color="black", lw=2.8, label=f"mean of {len(curves)}")
        ax.set_xlabel("step")
        ax.set_ylabel(literal(f"{split} {key}" if key else split))
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, ncol=2)
    axes[0].figure.tight_layout()


def _config(
    folder: Path, members: list[Member], summary: dict[str, Any]
) -> tuple[str, Path | None]:
    """The configuration the runs share (the first run's config.toml, else summary.json's) and
    the file to rerun it with."""
    for m in members:
        if m.run_dir is not None and own_file(folder, m.run_dir / CONFIG):
            return own_text(folder, m.run_dir / CONFIG), m.run_dir / CONFIG
    if isinstance(summary.get("config"), dict):
        return dump_toml(summary["config"]), None
    return "", None


def member_reports(members: list[Member]) -> dict[str, Path | None]:
    """Write each run's own report.html (what the table links to); None where it cannot be."""
    reports: dict[str, Path | None] = {}
    for m in members:
        try:
            reports[m.name] = write_run_report(m.run_dir) if m.run_dir is not None else None
        except FfnlpError:  # a run without summary.json, a damaged file: no link
            reports[m.name] = None
    return reports


def group_page(folder: Path, summary: dict[str, Any], kind: str, page: Path) -> str:
    """The whole report of a repeat or cv folder."""
    members = read_members(folder, summary, kind)
    reports = member_reports(members)
    unit = "seed" if kind == "repeat" else "fold"
    facts: list[tuple[str, Any]] = [("task", summary.get("task", "")), (f"{unit}s", len(members))]
    if kind == "repeat":
        facts.append(("seeds", ", ".join(str(s) for s in summary.get("seeds", []))))
    else:
        for key in ("data", "examples", "fold_seed", "dev_fraction"):
            if key in summary:
                facts.append((key.replace("_", " "), summary[key]))
    curves = plot_group_curves(members)
    curves_html = (
        img(curves, "learning curves of every run")
        if curves is not None
        else note("No run of this folder has a metrics.jsonl: there are no curves to draw.")
    )
    config, config_path = _config(folder, members, summary)
    again: list[Html] = []
    if config_path is not None:
        command = (
            f"ffnlp repeat {_base_task(summary)} --seeds {len(members)} --config {config_path} ..."
            if kind == "repeat"
            else f"ffnlp classify cv --folds {len(members)} --config {config_path} ..."
        )
        again.append(muted("Re-run with ", el("code", command)))
    if kind == "repeat":
        again.append(muted("Each run overrides ", el("code", "train.seed"), " with its seed."))
    title = f"ffnlp {summary.get('task', '')}: {len(members)} {unit}s"
    return document(
        title,
        el("h1", f"{title}: {folder}"),
        table(None, facts),
        el("h2", f"Mean, sd and 95% confidence interval over the {unit}s", id="summary"),
        aggregate_table(members),
        el("h2", f"Every {unit}", id="runs"),
        members_table(members, page, reports),
        el("h2", f"Learning curves (one line per {unit}, the mean in bold)", id="curves"),
        curves_html,
        el("h2", "Configuration", id="configuration"),
        cat(*again),
        el("pre", config),
    )


def write_run_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the report of a run folder, or of a repeat or cv folder (see :func:`write_report`)."""
    run_dir = run_path(run_dir)
    path = run_dir / SUMMARY
    if path.exists() and not own_file(run_dir, path):
        raise ModelFileError(
            f"{path} is a symbolic link (or leads out of {run_dir}); a report reads only the "
            "folder's own files: copy the file in its place"
        )
    summary = check_summary(read_summary(run_dir, required=True), path)
    kind = group_kind(summary)
    return write_page(
        run_dir,
        out,
        (lambda page: group_page(run_dir, summary, kind, page))
        if kind is not None
        else (lambda page: run_page(run_dir, summary)),
        f"{run_dir / 'summary.json'} or metrics.jsonl does not hold what ffnlp writes",
    )
