"""`ffnlp repeat TASK`: one configuration, several seeds, mean ± sd and a 95% CI."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from ffnlp.cli.common import (
    CONFIG_HELP,
    SET_OPTION,
    out_console,
    print_json,
    progress_callbacks,
    setup_logging,
)


def repeat(
    task: str = typer.Argument(..., help="classify or lm."),
    train: Path = typer.Option(..., "--train", help="Training data."),
    dev: Path = typer.Option(None, "--dev", help="Dev data."),
    test: Path = typer.Option(None, "--test", help="Test data."),
    config: Path = typer.Option(None, "--config", "-c", help=CONFIG_HELP),
    set_: list[str] = SET_OPTION,
    seeds: int = typer.Option(
        5, "--seeds", min=1, help="How many seeds (0, 1, ..., N-1 after --first-seed)."
    ),
    first_seed: int = typer.Option(0, "--first-seed", help="The first seed."),
    out: Path = typer.Option(
        None, "--out", "-o", help="Folder for the runs (default runs/TASK-repeat-<date>)."
    ),
    keep_models: bool = typer.Option(
        False, "--keep-models", help="Keep every seed's weights and checkpoint."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No per-seed lines or progress."),
    json_: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Train the same configuration with several seeds; report mean ± sd and 95% CI.

    Example:

        ffnlp repeat classify --seeds 5 --config configs/sst2_ffnn.toml --train ../shared/data/sst2/stsa.binary.train --dev ../shared/data/sst2/stsa.binary.dev --test ../shared/data/sst2/stsa.binary.test --out runs/sst2_ffnn_5seeds
    """
    from ffnlp.experiments.repeat import repeat as run_repeat

    setup_logging(quiet or json_)

    def progress(seed: int, row: dict) -> None:
        if not (quiet or json_):
            shown = {
                s: {k: round(v, 4) for k, v in row[s].items()} for s in ("dev", "test") if s in row
            }
            done = seed - first_seed + 1
            out_console.print(
                f"seed {seed} (run {done}/{seeds}): {shown} ({row['train_seconds']:.1f} s)",
                soft_wrap=True,
            )  # one line per run, also in a log file

    result = run_repeat(
        task,
        train,
        dev=dev,
        test=test,
        config=config,
        overrides=set_,
        seeds=list(range(first_seed, first_seed + seeds)),
        out=out,
        keep_models=keep_models,
        on_run=progress,
        callbacks=progress_callbacks(quiet or json_),
    )
    if json_:
        print_json(result)
        return
    table = Table(title=f"{task}: {seeds} seeds ({result['run_dir']})")
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
