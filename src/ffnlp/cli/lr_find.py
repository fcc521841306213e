"""What `ffnlp classify lr-find` and `ffnlp lm lr-find` share: their sweep options and output."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from ffnlp.cli.common import print_json, screen, setup_logging

MinLr = Annotated[float, typer.Option("--min-lr", help="Learning rate of the first step.")]
MaxLr = Annotated[float, typer.Option("--max-lr", help="Learning rate of the last step.")]
STEPS_HELP = "Training batches in the sweep (the rate grows by a constant factor each)."
Steps = Annotated[int, typer.Option("--steps", min=5, help=STEPS_HELP)]
PLOT_HELP = "Image of loss against learning rate (default: lr_find.png in --out, else here)."
Plot = Annotated[Path | None, typer.Option("--plot", help=PLOT_HELP)]
OUT_HELP = "Folder for lr_find.png and lr_find.json (default: the current one, plot only)."
Out = Annotated[Path | None, typer.Option("--out", "-o", help=OUT_HELP)]
JSON_HELP = "Print the curve and the suggestion as one JSON object."
Json = Annotated[bool, typer.Option("--json", help=JSON_HELP)]


@dataclass(frozen=True)
class Sweep:
    """Where the sweep goes and what it writes (see :func:`sweep_options`)."""

    lr_min: float
    lr_max: float
    steps: int
    plot: Path | None
    out: Path | None


def sweep_options(
    min_lr: MinLr = 1e-6,
    max_lr: MaxLr = 1.0,
    steps: Steps = 100,
    plot: Plot = None,
    out: Out = None,
) -> Sweep:
    return Sweep(min_lr, max_lr, steps, plot, out)


SWEEP = sweep_options()  # a command's ``sweep: Sweep = SWEEP``: where with_options puts the block


def run(
    find_lr: Callable[..., dict[str, Any]],
    train: Path,
    config: Path | None,
    overrides: Mapping[str, Any],
    seed: int | None,
    sweep: Sweep,
    json_: bool,
) -> None:
    """Check where the sweep writes, run ``find_lr`` (the task's), write its plot (and
    lr_find.json), print the suggestion (or the JSON)."""
    from ffnlp.report.lr_find import check_outputs, write_outputs  # when a sweep runs

    setup_logging(json_)
    check_outputs(sweep.plot, sweep.out)  # before the sweep
    found = find_lr(
        train,
        config=config,
        overrides=overrides,
        seed=seed,
        lr_min=sweep.lr_min,
        lr_max=sweep.lr_max,
        steps=sweep.steps,
    )
    title = f"lr range test: {config or 'default config'}"
    result = write_outputs(found, sweep.plot, sweep.out, title)
    if json_:
        print_json(result)
    else:
        screen.lr_find(result)
