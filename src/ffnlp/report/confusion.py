"""plots/confusion.png: the confusion matrix of a classifier (rows gold, columns predicted);
plots/label_f1.png: a multi-label classifier's F1 per label, which has no confusion matrix."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ffnlp.report.plots import save_figure  # noqa: E402
from ffnlp.report.text import literal  # noqa: E402


def plot_confusion(
    confusion: Sequence[Sequence[int]],
    labels: Sequence[str],
    path: str | Path,
    title: str = "confusion matrix",
) -> Path:
    """Counts in each cell, shaded by the row's share (recall), so classes of any size compare."""
    k = len(labels)
    rows = [list(map(int, r)) for r in confusion]
    shares = [[c / max(sum(r), 1) for c in r] for r in rows]
    size = max(3.5, 0.6 * k + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    for i in range(k):
        for j in range(k):
            ax.text(
                j,
                i,
                str(rows[i][j]),
                ha="center",
                va="center",
                color="white" if shares[i][j] > 0.5 else "black",
                fontsize=9,
            )
    shown = [literal(label) for label in labels]
    ax.set_xticks(range(k), shown, rotation=45 if k > 6 else 0)
    ax.set_yticks(range(k), shown)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(literal(title))
    fig.colorbar(image, ax=ax, fraction=0.046, label="share of the gold row")
    fig.tight_layout()
    path = Path(path)
    # usually RUN/plots/confusion.png: a plots/ that is a link is not written through
    return save_figure(fig, path, dpi=110, within=path.parent.parent)


def plot_label_f1(
    per_label: Mapping[str, Mapping[str, Any]],
    path: str | Path,
    top: int = 30,
    title: str = "F1 per label",
) -> Path:
    """Horizontal bars: the F1 of the ``top`` labels with the most gold examples, most frequent
    first, each with its support (how many examples have it)."""
    rows = sorted(per_label.items(), key=lambda kv: (-int(kv[1]["support"]), kv[0]))[:top]
    names = [name for name, _ in rows]
    f1 = [float(m["f1"]) for _, m in rows]
    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.28 * len(rows) + 1.2)))
    ax.barh(range(len(rows)), f1, color="tab:blue")
    for i, (_, m) in enumerate(rows):
        ax.text(
            min(float(m["f1"]), 0.85) + 0.01, i, f"n={int(m['support'])}", va="center", fontsize=8
        )
    ax.set_yticks(range(len(rows)), names, fontsize=8)
    ax.invert_yaxis()  # the most frequent label on top
    ax.set_xlim(0, 1)
    ax.set_xlabel("F1")
    shown = f"the {len(rows)} most frequent of {len(per_label)} labels"
    ax.set_title(f"{title}\n{shown}", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    return save_figure(fig, path, dpi=110, within=path.parent.parent)
