"""The figures of a study report, each returned as PNG bytes (drawn with matplotlib, so that
they need no Optuna): the optimisation history, the parameter importances, one slice per
parameter, the parallel coordinates and the learning curves the trials reported."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, NullFormatter  # noqa: E402

from ffnlp.report.plots import figure_png  # noqa: E402
from ffnlp.report.studyfolder import StudyFolder, StudyTrial  # noqa: E402
from ffnlp.report.text import literal  # noqa: E402

SLICE_COLUMNS = 3


def _value(t: StudyTrial) -> float:
    """The objective of a complete trial (StudyFolder.complete keeps only those with one)."""
    assert t.value is not None
    return t.value


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _axis(values: Sequence[Any], log: bool) -> tuple[str, list[Any]]:
    """How one parameter is drawn: ("log" | "linear", []) for numbers, ("categorical",
    [the categories in order]) for anything else."""
    if values and all(_is_number(v) for v in values):
        return ("log" if log and min(values) > 0 else "linear"), []
    return "categorical", sorted({str(v) for v in values})


def plot_optimisation_history(study: StudyFolder) -> bytes:
    """The objective of every complete trial against its number, the best value so far as a
    step line, and each pruned trial at the last value it reported (grey crosses)."""
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    done = study.complete
    if done:
        ax.plot(
            [t.number for t in done],
            [_value(t) for t in done],
            "o",
            color="tab:blue",
            label="complete trial",
        )
        best: list[int] = []
        best_so_far: list[float] = []
        pick = min if study.direction == "minimize" else max
        for t in done:
            best_so_far.append(_value(t) if not best_so_far else pick(best_so_far[-1], _value(t)))
            best.append(t.number)
        ax.step(best, best_so_far, where="post", color="tab:red", lw=2, label="best so far")
    pruned = [t for t in study.trials if t.state == "PRUNED" and t.intermediate]
    if pruned:
        ax.plot(
            [t.number for t in pruned],
            [t.intermediate[max(t.intermediate)] for t in pruned],
            "x",
            color="tab:gray",
            ms=8,
            label="pruned (last reported value)",
        )
    ax.set_xlabel("trial")
    ax.set_ylabel(literal(study.metric))
    ax.set_title(literal(f"optimisation history ({study.direction})"))
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    fig.tight_layout()
    return figure_png(fig)


def plot_importances(importances: dict[str, float]) -> bytes:
    """A horizontal bar per parameter, the most important on top."""
    names = list(importances)[::-1]
    fig, ax = plt.subplots(figsize=(7.5, 0.5 + 0.4 * max(len(names), 2)))
    ax.barh([literal(n) for n in names], [importances[n] for n in names], color="tab:blue")
    for y, name in enumerate(names):
        ax.text(importances[name], y, f" {importances[name]:.3f}", va="center", fontsize=8)
    ax.set_xlabel("importance (fANOVA, share of the objective's variance)")
    ax.set_xlim(0, max([*importances.values(), 1e-9]) * 1.15)
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return figure_png(fig)


def plot_slices(study: StudyFolder, params: Sequence[str]) -> bytes:
    """The objective against each parameter (one panel each, complete trials, darker = later),
    on a log axis for the parameters sampled on a log scale."""
    logged = study.log_params()
    done = study.complete
    columns = min(SLICE_COLUMNS, max(len(params), 1))
    rows = max(1, math.ceil(len(params) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3.2 * rows), squeeze=False)
    numbers = [t.number for t in done]
    for ax, name in zip(axes.flat, params, strict=False):
        have = [t for t in done if name in t.params]
        kind, categories = _axis([t.params[name] for t in have], name in logged)
        xs = [
            categories.index(str(t.params[name])) if kind == "categorical" else t.params[name]
            for t in have
        ]
        ax.scatter(
            xs,
            [_value(t) for t in have],
            c=[t.number for t in have],
            cmap="Blues",
            vmin=min(numbers, default=0) - 1,
            vmax=max(numbers, default=1),
            edgecolors="tab:blue",
            linewidths=0.5,
        )
        if kind == "log":
            ax.set_xscale("log")
            plain = FuncFormatter(lambda v, _: f"{v:g}")  # 0.001, 20 (not 10^-3, 2x10^1)
            ax.xaxis.set_major_formatter(plain)
            narrow = max(xs) < 10 * min(xs)  # no decade inside: label the minor ticks
            ax.xaxis.set_minor_formatter(plain if narrow else NullFormatter())
        elif kind == "categorical":
            ax.set_xticks(range(len(categories)), [literal(c) for c in categories], fontsize=8)
            ax.set_xlim(-0.5, len(categories) - 0.5)
        ax.set_xlabel(literal(name) + (" (log)" if kind == "log" else ""))
        ax.set_ylabel(literal(study.metric))
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(params) :]:
        ax.set_visible(False)
    fig.tight_layout()
    return figure_png(fig)


def plot_parallel_coordinates(study: StudyFolder, params: Sequence[str]) -> bytes:
    """One vertical axis per parameter and one for the objective; each complete trial is a line
    across them, coloured by its objective (yellow = best). Every axis spans its own range."""
    logged = study.log_params()
    done = [t for t in study.complete if all(p in t.params for p in params)]
    values = np.asarray([_value(t) for t in done], dtype=np.float64)  # (T,)
    columns = []  # per axis: (label, positions in [0, 1] per trial, tick positions, tick labels)
    for name in params:
        raw = [t.params[name] for t in done]
        kind, categories = _axis(raw, name in logged)
        if kind == "categorical":
            index = np.asarray([categories.index(str(v)) for v in raw], dtype=np.float64)
            span = max(len(categories) - 1, 1)
            ticks = [(i / span, c) for i, c in enumerate(categories)]
            columns.append((name, index / span, ticks))
            continue
        x = np.asarray(raw, dtype=np.float64)
        scaled = np.log10(x) if kind == "log" else x
        low, high = float(scaled.min()), float(scaled.max())
        position = (scaled - low) / (high - low) if high > low else np.full_like(x, 0.5)
        ends = [(0.0, f"{x.min():.3g}"), (1.0, f"{x.max():.3g}")] if high > low else []
        columns.append((name + (" (log)" if kind == "log" else ""), position, ends))
    low, high = float(values.min()), float(values.max())
    objective = (values - low) / (high - low) if high > low else np.full_like(values, 0.5)
    columns.append((study.metric, objective, [(0.0, f"{low:.4g}"), (1.0, f"{high:.4g}")]))
    fig, ax = plt.subplots(figsize=(max(7.5, 1.6 * len(columns)), 4.5))
    goodness = objective if study.direction == "maximize" else 1 - objective
    cmap = plt.get_cmap("viridis")
    order = np.argsort(goodness)  # the best drawn last, on top
    xs = np.arange(len(columns))
    for i in order:
        ax.plot(xs, [c[1][i] for c in columns], color=cmap(goodness[i]), alpha=0.8, lw=1.2)
    for where, (_, _, ticks) in enumerate(columns):
        ax.axvline(where, color="black", lw=0.8)
        for y, text in ticks:
            ax.text(where + 0.03, y, literal(text), fontsize=7, va="center")
    ax.set_xticks(xs, [literal(c[0]) for c in columns], rotation=20, ha="right", fontsize=8)
    ax.set_yticks([])
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlim(-0.2, len(columns) - 0.6)
    ax.set_title(literal(f"parallel coordinates ({len(done)} complete trials; yellow = best)"))
    fig.tight_layout()
    return figure_png(fig)


def plot_intermediate_values(study: StudyFolder, best: StudyTrial | None) -> bytes:
    """The value each trial reported at each dev evaluation against the step: complete trials in
    blue, pruned ones grey (where the pruner stopped them), the best trial bold red."""
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    labelled: set[str] = set()
    for t in study.trials:
        if not t.intermediate or (best is not None and t.number == best.number):
            continue
        label = "pruned" if t.state == "PRUNED" else "complete" if t.state == "COMPLETE" else ""
        style: dict[str, Any] = (
            {"color": "tab:gray", "alpha": 0.5, "lw": 1, "marker": "x", "ms": 4}
            if t.state == "PRUNED"
            else {"color": "tab:blue", "alpha": 0.6, "lw": 1}
        )
        steps = sorted(t.intermediate)
        ax.plot(
            steps,
            [t.intermediate[s] for s in steps],
            label=label if label and label not in labelled else None,
            **style,
        )
        labelled.add(label)
    if best is not None and best.intermediate:
        steps = sorted(best.intermediate)
        ax.plot(
            steps,
            [best.intermediate[s] for s in steps],
            "o-",
            color="tab:red",
            lw=2.5,
            label=f"best (trial {best.number})",
        )
    ax.set_xlabel("step")
    ax.set_ylabel(literal(study.metric))
    ax.set_title("values reported at each evaluation (what the pruner sees)")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    fig.tight_layout()
    return figure_png(fig)
