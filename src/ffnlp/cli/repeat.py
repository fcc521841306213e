"""`ffnlp repeat TASK`: one configuration, several seeds, mean ± sd and a 95% CI.

``--seeds`` on `classify train` and `lm train` is the same command: :func:`run_repeat` is what
both call.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from ffnlp.cli.common import (
    CONFIG_HELP,
    SET_OPTION,
    TENSORBOARD_OPTION,
    command_settings,
    out_console,
    print_json,
    progress_callbacks,
    setup_logging,
)

SEEDS_HELP = (
    "Seeds: a count N (seeds 0 to N-1, or from --first-seed) or a list such as 0,1,2; one run "
    "each in OUT/seed_S."
)


def parse_seeds(text: str, first_seed: int = 0, option: str = "--seeds") -> list[int]:
    """``"5"``: five seeds from ``first_seed``; ``"0,1,2"``: those seeds. A usage error (exit 2)
    naming ``option`` when it is neither."""
    try:
        numbers = [int(part) for part in text.split(",")]
    except ValueError:
        numbers = []
    if not numbers or any(n < 0 for n in numbers):
        raise typer.BadParameter(
            f"give a number of seeds (e.g. 5) or a list of seeds (e.g. 0,1,2); got {text!r}",
            param_hint=option,
        )
    if len(numbers) == 1:  # a count
        if numbers[0] < 1:
            raise typer.BadParameter(
                f"at least one seed is needed; got {text!r}", param_hint=option
            )
        return list(range(first_seed, first_seed + numbers[0]))
    if first_seed:
        raise typer.BadParameter(
            "--first-seed goes with a number of seeds; a list names every seed itself",
            param_hint="--first-seed",
        )
    return numbers


def repeat(
    task: str = typer.Argument(..., help="classify or lm."),
    train: Path = typer.Option(..., "--train", help="Training data."),
    dev: Path = typer.Option(None, "--dev", help="Dev data."),
    test: Path = typer.Option(None, "--test", help="Test data."),
    config: Path = typer.Option(None, "--config", "-c", help=CONFIG_HELP),
    set_: list[str] = SET_OPTION,
    seeds: str = typer.Option("5", "--seeds", help=SEEDS_HELP),
    first_seed: int = typer.Option(
        0, "--first-seed", min=0, help="The first seed of a count of --seeds."
    ),
    out: Path = typer.Option(
        None, "--out", "-o", help="Folder for the runs (default runs/TASK-repeat-<date>)."
    ),
    keep_models: bool = typer.Option(
        False, "--keep-models", help="Keep every seed's weights and checkpoint."
    ),
    tensorboard: Path = TENSORBOARD_OPTION,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No per-seed lines or progress."),
    json_: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Train the same configuration with several seeds; report mean ± sd and 95% CI.

    Example:

        ffnlp repeat classify --seeds 5 --config sst2_ffnn --train ../shared/data/sst2/stsa.binary.train --dev ../shared/data/sst2/stsa.binary.dev --test ../shared/data/sst2/stsa.binary.test --out runs/sst2_ffnn_5seeds
    """
    run_repeat(
        task,
        train,
        dev,
        test,
        config,
        command_settings(set_),
        parse_seeds(seeds, first_seed),
        out,
        keep_models=keep_models,
        tensorboard=tensorboard,
        quiet=quiet,
        json_=json_,
    )


def run_repeat(
    task: str,
    train: Path,
    dev: Path | None,
    test: Path | None,
    config: Path | None,
    sets: Mapping[str, Any],
    seeds: list[int],
    out: Path | None,
    keep_models: bool = False,
    tensorboard: Path | None = None,
    quiet: bool = False,
    json_: bool = False,
) -> None:
    """Train once per seed and print what `ffnlp repeat` prints: a line per seed, then the table
    of mean, sd and 95% CI (or the summary as JSON)."""
    from ffnlp.experiments.repeat import repeat as repeat_runs

    setup_logging(quiet or json_)
    done = 0

    def progress(seed: int, row: dict[str, Any]) -> None:
        nonlocal done
        done += 1
        if not (quiet or json_):
            shown = {
                s: {k: round(v, 4) for k, v in row[s].items()} for s in ("dev", "test") if s in row
            }
            out_console.print(
                f"seed {seed} (run {done}/{len(seeds)}): {shown} ({row['train_seconds']:.1f} s)",
                soft_wrap=True,
            )  # one line per run, also in a log file

    result = repeat_runs(
        task,
        train,
        dev=dev,
        test=test,
        config=config,
        overrides=sets,
        seeds=seeds,
        out=out,
        keep_models=keep_models,
        on_run=progress,
        callbacks=progress_callbacks(quiet or json_),
        tensorboard=tensorboard,
    )
    if json_:
        print_json(result)
        return
    table = Table(title=f"{task}: {len(seeds)} seeds ({result['run_dir']})")
    for col in ("split", "metric", "mean", "sd", "95% CI"):
        table.add_column(col, justify="left" if col in ("split", "metric") else "right")
    for split in ("dev", "test", "train"):
        for name, d in result["repeat"].get(split, {}).items():
            table.add_row(
                split,
                name,
                f"{d['mean']:.4f}",
                f"{d['sd']:.4f}",
                f"[{d['ci95'][0]:.4f}, {d['ci95'][1]:.4f}]",
            )
    out_console.print(table)
