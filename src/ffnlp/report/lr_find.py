"""What a learning-rate range test writes: its plot and (with a folder) lr_find.json, both or
neither, each place checked before the sweep starts."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ffnlp.fileio import Outputs, check_target
from ffnlp.outputs import check_output_dir, check_output_file

PLOT_NAME = "lr_find.png"
JSON_NAME = "lr_find.json"


def check_outputs(plot: Path | None, out: Path | None) -> tuple[Path, Path | None]:
    """Where the sweep writes, checked before it starts: the plot (--plot, else lr_find.png in
    --out or here) and --out's lr_find.json. A folder where a file goes, a file where a folder
    goes, a symbolic link, a place that cannot be written: one error, nothing trained."""
    json_path = None
    if out is not None:
        check_output_dir(out, "--out", links=False)
        json_path = check_target(out / JSON_NAME, within=out)
    if plot is not None:
        return check_output_file(plot, "--plot"), json_path
    if out is not None:
        return check_target(out / PLOT_NAME, within=out), json_path
    return check_output_file(Path(PLOT_NAME), "--plot (default)"), json_path


def write_outputs(
    result: dict[str, Any], plot: Path | None, out: Path | None, title: str
) -> dict[str, Any]:
    """Draw the plot and write lr_find.json under ``out`` (both or neither); the result with the
    plot's path under "plot"."""
    from ffnlp.report.plots import plot_lr_range  # imports matplotlib

    path, json_path = check_outputs(plot, out)
    result = {**result, "plot": str(path)}
    with Outputs() as outputs:
        if out is not None:
            outputs.folder(out)
        outputs.write_with(path, lambda name: plot_lr_range(result, name, title))
        if json_path is not None:
            outputs.write(json_path, json.dumps(result, indent=2), within=out)
    return result


def range_test(
    find_lr: Callable[..., dict[str, Any]],
    train: Path,
    plot: Path | None,
    out: Path | None,
    **settings: Any,
) -> dict[str, Any]:
    """A task's learning-rate range test (``find_lr``, e.g. ffnlp.tasks.classify.lr_find.find_lr,
    given ``train`` and ``settings``: config, overrides, seed, lr_min, lr_max, steps) with its
    outputs: where they go checked before the sweep, then the plot (and lr_find.json in ``out``)
    written; the result with the plot's path under "plot"."""
    check_outputs(plot, out)  # before the sweep
    found = find_lr(train, **settings)
    title = f"lr range test: {settings.get('config') or 'default config'}"
    return write_outputs(found, plot, out, title)
