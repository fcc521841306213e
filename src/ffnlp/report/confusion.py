"""plots/confusion.png: the confusion matrix of a classifier (rows gold, columns predicted)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

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
