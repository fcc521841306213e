"""Plots of a run (the report package is what imports matplotlib, with the Agg backend: no screen)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ffnlp.errors import DataError  # noqa: E402
from ffnlp.features.wordvec_eval import WordVectors, project_2d  # noqa: E402
from ffnlp.report.text import literal  # noqa: E402


def plot_history(records: list[dict[str, Any]], out_dir: str | Path, metric: str | None = None) -> list[Path]:
    """plots/loss.png: train loss per logged step and per epoch, dev loss per evaluation.

    With ``metric`` (e.g. "accuracy"), also plots/dev_<metric>.png.  Returns the files written.
    """
    out = Path(out_dir) / "plots"
    out.mkdir(parents=True, exist_ok=True)
    steps = [r for r in records if r["event"] == "step"]
    epochs = [r for r in records if r["event"] == "epoch"]
    evals = [r for r in records if r.get("dev")]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    if steps:
        ax.plot([r["step"] for r in steps], [r["train"]["loss"] for r in steps],
                color="tab:blue", alpha=0.35, lw=1, label="train loss (step)")
    if epochs:
        ax.plot([r["step"] for r in epochs], [r["train"]["loss"] for r in epochs],
                "o-", color="tab:blue", label="train loss (epoch mean)")
    dev_loss = [r for r in evals if "loss" in r["dev"]]
    if dev_loss:
        ax.plot([r["step"] for r in dev_loss], [r["dev"]["loss"] for r in dev_loss],
                "s-", color="tab:orange", label="dev loss")
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
    written = [out / "loss.png"]
    fig.savefig(written[0], dpi=110)
    plt.close(fig)
    if metric:
        points = [r for r in evals if metric in r["dev"]]
        if points:
            fig, ax = plt.subplots(figsize=(7, 4.2))
            ax.plot([r["step"] for r in points], [r["dev"][metric] for r in points], "s-", color="tab:green")
            ax.set_xlabel("step")
            ax.set_ylabel(literal(f"dev {metric}"))
            ax.grid(alpha=0.3)
            fig.tight_layout()
            path = out / f"dev_{metric}.png"
            fig.savefig(path, dpi=110)
            plt.close(fig)
            written.append(path)
    return written


def plot_projection(
    wv: WordVectors, words: Sequence[str], path: str | Path, neighbours: int = 0
) -> Path:
    """A 2-D PCA projection of ``words`` (plus each one's nearest neighbours) saved as an image."""

    chosen: list[str] = []
    for w in words:
        if w not in wv:
            raise DataError(f"the word {w!r} is not in the vocabulary ({len(wv)} words)")
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
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
