"""What `ffnlp classify lr-find` and `ffnlp lm lr-find` share: their sweep options and output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from ffnlp.cli.common import out_console, print_json

PLOT_NAME = "lr_find.png"

MIN_LR_OPTION: Any = typer.Option(1e-6, "--min-lr", help="Learning rate of the first step.")
MAX_LR_OPTION: Any = typer.Option(1.0, "--max-lr", help="Learning rate of the last step.")
STEPS_OPTION: Any = typer.Option(
    100,
    "--steps",
    min=5,
    help="Training batches in the sweep (the rate grows by a constant factor each).",
)
PLOT_OPTION: Any = typer.Option(
    None,
    "--plot",
    help=f"Image of loss against learning rate (default: {PLOT_NAME} in --out, else here).",
)
OUT_OPTION: Any = typer.Option(
    None,
    "--out",
    "-o",
    help=f"Folder for {PLOT_NAME} and lr_find.json (default: the current one, plot only).",
)
JSON_OPTION: Any = typer.Option(
    False, "--json", help="Print the curve and the suggestion as one JSON object."
)


def report(
    result: dict[str, Any], plot: Path | None, out: Path | None, json_: bool, title: str
) -> None:
    """Draw the plot, write lr_find.json under ``out``, then print the suggestion (or the JSON)."""
    from ffnlp.report.plots import plot_lr_range

    path = plot if plot is not None else (out if out is not None else Path(".")) / PLOT_NAME
    result = {**result, "plot": str(plot_lr_range(result, path, title))}
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "lr_find.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    if json_:
        print_json(result)
        return
    lrs = result["lr"]
    out_console.print(
        f"Swept {len(lrs)} steps of {result['optimizer']} from lr {lrs[0]:.3g} to {lrs[-1]:.3g}"
        + (f" (stopped: {result['stop_reason']})." if result["stop_reason"] else ".")
    )
    out_console.print(
        f"Lowest smoothed loss {min(result['loss']):.4f} at lr {result['min_loss_lr']:.3g}; "
        f"a tenth of it: {result['min_over_10_lr']:.3g}; the configuration's lr: "
        f"{result['config_lr']:.3g}."
    )
    out_console.print(f"Plot: {result['plot']}")
    out_console.print(
        f"Suggested learning rate ({result['rule']}): {result['suggested_lr']:.3g}  "
        f"(--set train.lr={result['suggested_lr']:.3g})"
    )
