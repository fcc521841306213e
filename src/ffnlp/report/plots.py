"""Plots of a run (the report package is what imports matplotlib, with the Agg backend: no screen)."""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ffnlp.features.wordvec_eval import WordVectors, project_2d  # noqa: E402
from ffnlp.fileio import write_atomic  # noqa: E402
from ffnlp.folders.layout import DIAGNOSTICS_PLOT, LOSS_PLOT, PLOTS
from ffnlp.report.text import literal  # noqa: E402


def plot_history(
    records: list[dict[str, Any]], out_dir: str | Path, metric: str | None = None
) -> list[Path]:
    """plots/loss.png: train loss per logged step and per epoch, dev loss per evaluation.

    With ``metric`` (e.g. "accuracy"), also plots/dev_<metric>.png; when the records carry
    training diagnostics, plots/diagnostics.png.  Returns the files written.
    """
    run_dir = Path(out_dir)
    out = run_dir / PLOTS
    steps = [r for r in records if r["event"] == "step"]
    epochs = [r for r in records if r["event"] == "epoch"]
    evals = [r for r in records if r.get("dev")]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    if steps:
        ax.plot(
            [r["step"] for r in steps],
            [r["train"]["loss"] for r in steps],
            color="tab:blue",
            alpha=0.35,
            lw=1,
            label="train loss (step)",
        )
    if epochs:
        ax.plot(
            [r["step"] for r in epochs],
            [r["train"]["loss"] for r in epochs],
            "o-",
            color="tab:blue",
            label="train loss (epoch mean)",
        )
    dev_loss = [r for r in evals if "loss" in r["dev"]]
    if dev_loss:
        ax.plot(
            [r["step"] for r in dev_loss],
            [r["dev"]["loss"] for r in dev_loss],
            "s-",
            color="tab:orange",
            label="dev loss",
        )
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    if epochs:  # a second axis with epoch numbers
        top = ax.secondary_xaxis("top")
        top.set_xticks([r["step"] for r in epochs], [str(r["epoch"]) for r in epochs])
        top.set_xlabel("epoch")
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    fig.tight_layout()
    written = [save_figure(fig, out / LOSS_PLOT, dpi=110, within=run_dir)]
    if metric:
        points = [r for r in evals if metric in r["dev"]]
        if points:
            fig, ax = plt.subplots(figsize=(7, 4.2))
            ax.plot(
                [r["step"] for r in points],
                [r["dev"][metric] for r in points],
                "s-",
                color="tab:green",
            )
            ax.set_xlabel("step")
            ax.set_ylabel(literal(f"dev {metric}"))
            ax.grid(alpha=0.3)
            fig.tight_layout()
            written.append(save_figure(fig, out / f"dev_{metric}.png", dpi=110, within=run_dir))
    if any("diagnostics" in r for r in records):
        written.append(plot_diagnostics(records, out / DIAGNOSTICS_PLOT, within=run_dir))
    return written


def plot_diagnostics(
    records: list[dict[str, Any]], path: str | Path, within: str | Path | None = None
) -> Path:
    """plots/diagnostics.png (train.diagnostics): against the step, the dead (ReLU family) or
    saturated (tanh, sigmoid) fraction of each hidden layer, and each weight matrix's gradient
    norm and update/weight ratio."""
    rows = [r for r in records if "diagnostics" in r]
    steps = [r["step"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    units, grads, updates = axes

    def series(section: str, name: str, key: str) -> tuple[list[int], list[float]]:
        """(steps, values) of one layer's or weight's entry, where the records have it."""
        x, y = [], []
        for step, r in zip(steps, rows, strict=True):
            value = r["diagnostics"][section].get(name, {}).get(key)
            if isinstance(value, (int, float)) and np.isfinite(value):
                x.append(step)
                y.append(float(value))
        return x, y

    layers = list(dict.fromkeys(n for r in rows for n in r["diagnostics"]["layers"]))
    for name in layers:
        for key, style in (("dead", "o-"), ("saturated", "s--")):
            x, y = series("layers", name, key)
            if x:
                units.plot(x, y, style, label=f"{name} {key}")
    units.axhline(0.5, color="tab:red", lw=0.8, alpha=0.5)  # above it: a warning
    units.set_ylim(-0.03, 1.03)
    units.set_title("hidden units: dead / saturated fraction")
    weights = list(dict.fromkeys(n for r in rows for n in r["diagnostics"]["weights"]))
    for ax, key, title in (
        (grads, "grad_norm", "gradient norm"),
        (updates, "update_ratio", "||ΔW|| / ||W|| since the previous record"),
    ):
        for name in weights:
            x, y = series("weights", name, key)
            if x and all(v > 0 for v in y):
                ax.plot(x, y, "o-", label=name)
        if ax.get_lines():
            ax.set_yscale("log")
        ax.set_title(title)
    for ax in axes:
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path, dpi=110, within=within)


def plot_projection(
    wv: WordVectors, words: Sequence[str], path: str | Path, neighbours: int = 0
) -> Path:
    """A 2-D PCA projection of ``words`` (plus each one's nearest neighbours) saved as an image."""

    chosen: list[str] = []
    for w in words:
        wv.vector(w)  # a DataError naming a word that has no vector
        chosen.append(w)
        chosen.extend(n for n, _ in wv.most_similar(w, neighbours) if n not in chosen)
    chosen = list(dict.fromkeys(chosen))
    coords = project_2d(np.stack([wv[w] for w in chosen]))
    fig, ax = plt.subplots(figsize=(7, 6))
    queried = set(words)
    for (x, y), w in zip(coords, chosen, strict=True):
        ax.scatter([x], [y], s=14, color="tab:red" if w in queried else "tab:blue")
        ax.annotate(
            literal(w),
            (x, y),
            fontsize=9,
            xytext=(3, 3),
            textcoords="offset points",
            fontweight="bold" if w in queried else "normal",
        )
    ax.set_title("word vectors: first two principal components")
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    fig.tight_layout()
    return save_figure(fig, path, dpi=120)


def plot_loss_curves(
    curves: dict[str, Sequence[float]],
    path: str | Path,
    title: str = "",
    xlabel: str = "step",
    window: int = 1,
) -> Path:
    """Several loss curves (name -> loss per step) on one plot, saved as an image.

    With ``window`` > 1 each curve is the running mean of that many steps (minibatch losses are
    noisy). Later curves are drawn dashed and thinner over the earlier ones, so curves that
    coincide (the NumPy and PyTorch networks of `explain numpy-vs-torch`) stay visible as two.
    """
    styles = [("-", 3.0, 0.55), ("--", 1.3, 1.0), (":", 1.3, 1.0)]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for i, (name, losses) in enumerate(curves.items()):
        line, width, alpha = styles[min(i, len(styles) - 1)]
        values = np.asarray(losses, dtype=np.float64)
        w = max(1, min(window, len(values)))
        smooth = np.convolve(values, np.ones(w) / w, mode="valid")  # (steps - w + 1,)
        steps = np.arange(w, len(values) + 1)  # each point at the last step it averages
        ax.plot(steps, smooth, line, lw=width, alpha=alpha, label=literal(name))
    ax.set_xlabel(literal(xlabel))
    ax.set_ylabel("loss" if window <= 1 else f"loss (running mean of {window} steps)")
    if title:
        ax.set_title(literal(title), fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)


def plot_lr_range(result: dict[str, Any], path: str | Path, title: str = "") -> Path:
    """The learning-rate range test: loss against learning rate (log scale), the raw loss faint,
    the smoothed loss solid, the suggested rate marked with a vertical line."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.plot(result["lr"], result["raw_loss"], color="tab:blue", alpha=0.3, lw=1, label="loss")
    ax.plot(result["lr"], result["loss"], color="tab:blue", lw=2, label="smoothed loss")
    suggested = result["suggested_lr"]
    ax.axvline(suggested, color="tab:red", ls="--", label=f"suggested lr {suggested:.3g}")
    if "min_loss_lr" in result:
        ax.axvline(
            result["min_loss_lr"],
            color="tab:gray",
            ls=":",
            label=f"lowest loss at lr {result['min_loss_lr']:.3g}",
        )
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    # the noisy or exploding last steps would squash the curve: the axis spans the smoothed one
    low, start = min(result["loss"]), result["loss"][0]
    span = max(start - low, 1e-3 * max(abs(start), 1.0))
    ax.set_ylim(low - 0.3 * span, start + 0.5 * span)
    ax.grid(alpha=0.3)
    ax.set_title(literal(title or "learning-rate range test"))
    ax.legend()
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)


@contextmanager
def page_drawing() -> Iterator[None]:
    """Around the making of a report page: NumPy's floating-point warnings silenced (a file may
    hold values near the float limit, e.g. a diverged loss of 1e308, which matplotlib's ticks
    overflow on: the plot is still drawn) and, when the page fails, the figures made inside the
    block closed (each plot closes its own when it succeeds), so that a report that stops on a
    damaged file leaves no figure open in the process."""
    before = set(plt.get_fignums())
    try:
        with np.errstate(all="ignore"):
            yield
    except BaseException:
        for number in set(plt.get_fignums()) - before:
            plt.close(number)
        raise


def figure_png(fig: Any, dpi: int = 110, fmt: str = "png") -> bytes:
    """``fig`` rendered as PNG (or ``fmt``: pdf, svg) bytes in memory (and closed): for a file,
    or a page's data URI."""
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format=fmt, dpi=dpi)
    finally:
        plt.close(fig)
    return buffer.getvalue()


def image_format(path: str | Path) -> str:
    """The format a plot is saved in: its file's suffix when that is .pdf or .svg, else PNG."""
    suffix = Path(path).suffix.lower().lstrip(".")
    return suffix if suffix in ("pdf", "svg") else "png"


def save_figure(
    fig: Any, path: str | Path, dpi: int = 110, within: str | Path | None = None
) -> Path:
    """Render ``fig`` in memory (PNG, or PDF / SVG by the suffix of ``path``), close it and
    write the file atomically (see :mod:`ffnlp.fileio`): a full disk never leaves half an
    image."""
    return write_atomic(path, figure_png(fig, dpi, image_format(path)), within=within)
