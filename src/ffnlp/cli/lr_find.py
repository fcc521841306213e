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


def check_outputs(plot: Path | None, out: Path | None) -> tuple[Path, Path | None]:
    """Where the sweep writes, checked before it starts: the plot (--plot, else lr_find.png in
    --out or here) and --out's lr_find.json. A folder where a file goes, a file where a folder
    goes, a symbolic link, a place that cannot be written: one error, nothing trained."""
    from ffnlp.fileio import check_target
    from ffnlp.outputs import check_output_dir, check_output_file

    json_path = None
    if out is not None:
        check_output_dir(out, "--out", links=False)
        json_path = check_target(out / "lr_find.json", within=out)
    if plot is not None:
        return check_output_file(plot, "--plot"), json_path
    if out is not None:
        return check_target(out / PLOT_NAME, within=out), json_path
    return check_output_file(Path(PLOT_NAME), "--plot (default)"), json_path


def report(
    result: dict[str, Any], plot: Path | None, out: Path | None, json_: bool, title: str
) -> None:
    """Draw the plot, write lr_find.json under ``out`` (both or neither), then print the
    suggestion (or the JSON)."""
    from ffnlp.fileio import Outputs
    from ffnlp.report.plots import plot_lr_range

    path, json_path = check_outputs(plot, out)
    result = {**result, "plot": str(path)}
    with Outputs() as outputs:
        if out is not None:
            outputs.folder(out)
        outputs.write_with(path, lambda name: plot_lr_range(result, name, title))
        if json_path is not None:
            outputs.write(json_path, json.dumps(result, indent=2), within=out)
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
