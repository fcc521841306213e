"""`ffnlp repeat TASK`: one configuration, several seeds, mean ± sd and a 95% CI.

``--seeds`` of `classify train` and `lm train` is the same command: this module parses it and
runs the seeds, for all three (:func:`train_seeds`).
"""

import itertools
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from ffnlp.cli.common import print_result, progress_callbacks, screen, setup_logging
from ffnlp.cli.options import Config, RunOptions, Set, Tensorboard, settings
from ffnlp.cli.options import HelpTable as Help

HELP = Help(
    {
        "TASK": "classify or lm.",
        "--train": "Training data.",
        "--dev": "Dev data.",
        "--test": "Test data.",
        "--seeds": "Seeds: a count N (seeds 0 to N-1, or from --first-seed) or a list such as "
        "0,1,2; one run each in OUT/seed_S.",
        "--first-seed": "The first seed of a count of --seeds.",
        "--out": "Folder for the runs (default runs/TASK-repeat-<date>).",
        "--keep-models": "Keep every seed's weights and checkpoint.",
        "--quiet": "No per-seed lines or progress.",
        "--json": "Print the summary as JSON.",
    }
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
    task: Annotated[str, HELP("TASK")],
    train: Annotated[Path, HELP("--train")],
    dev: Annotated[Path | None, HELP("--dev")] = None,
    test: Annotated[Path | None, HELP("--test")] = None,
    config: Config = None,
    set_: Set = [],  # noqa: B006 (typer copies it)
    seeds: Annotated[str, HELP("--seeds")] = "5",
    first_seed: Annotated[int, HELP("--first-seed", min=0)] = 0,
    out: Annotated[Path | None, HELP("--out", "-o")] = None,
    keep_models: Annotated[bool, HELP("--keep-models")] = False,
    tensorboard: Tensorboard = None,
    quiet: Annotated[bool, HELP("--quiet", "-q")] = False,
    json_: Annotated[bool, HELP("--json")] = False,
) -> None:
    """Train the same configuration with several seeds; report mean ± sd and 95% CI.

    Example:

        ffnlp repeat classify --seeds 5 --config sst2_ffnn --train ../shared/data/sst2/stsa.binary.train --dev ../shared/data/sst2/stsa.binary.dev --test ../shared/data/sst2/stsa.binary.test --out runs/sst2_ffnn_5seeds
    """
    sets = settings(set_)
    seed_list = parse_seeds(seeds, first_seed)
    data = (train, dev, test)
    run_repeat(task, data, config, sets, seed_list, out, keep_models, tensorboard, quiet, json_)


def train_seeds(
    task: str,
    seeds: str,
    run: RunOptions,
    data: tuple[Path, Path | None, Path | None],
    config: Path | None,
    overrides: Mapping[str, Any],
    out: Path | None,
    seed: int | None = None,
) -> None:
    """``train --seeds``: the runs of `ffnlp repeat` (the options that make a single run refused)."""
    given = {
        "--seed": seed is not None,
        "--resume": run.resume is not None,
        "--force": run.force,
        "--init-from": run.init_from is not None,
    }
    clashing = [option for option, present in given.items() if present]
    if clashing:
        raise typer.BadParameter(
            f"--seeds trains one run per seed (as `ffnlp repeat`); {clashing[0]} is for a single "
            "run: leave one of them out",
            param_hint="--seeds",
        )
    seed_list = parse_seeds(seeds)
    run_repeat(
        task, data, config, overrides, seed_list, out, False, run.tensorboard, run.quiet, run.json
    )


def run_repeat(
    task: str,
    data: tuple[Path, Path | None, Path | None],
    config: Path | None,
    overrides: Mapping[str, Any],
    seeds: list[int],
    out: Path | None,
    keep_models: bool,
    tensorboard: Path | None,
    quiet: bool,
    json_: bool,
) -> None:
    """Train once per seed and print a line per seed, then the table of mean, sd and 95% CI (or
    the summary as JSON)."""
    from ffnlp.experiments.repeat import repeat as repeat_runs  # imports torch

    setup_logging(quiet or json_)
    done = itertools.count(1)  # the runs finished

    def progress(seed: int, row: dict[str, Any]) -> None:
        if not (quiet or json_):
            screen.repeat_seed(seed, next(done), len(seeds), row)

    train, dev, test = data
    result = repeat_runs(
        task,
        train,
        dev=dev,
        test=test,
        config=config,
        overrides=overrides,
        seeds=seeds,
        out=out,
        keep_models=keep_models,
        on_run=progress,
        callbacks=progress_callbacks(quiet or json_),
        tensorboard=tensorboard,
    )
    print_result(result, json_, lambda r: screen.repeat(task, len(seeds), r))
