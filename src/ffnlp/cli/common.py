"""What every CLI command shares on the terminal: the consoles, logging, progress, JSON; the
body of every `train` command (--nproc, --seeds, the task's recipe) and of `ffnlp repeat`."""

from __future__ import annotations

import itertools
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.logging import RichHandler

from ffnlp.cli.options import RunOptions, Sweep, settings
from ffnlp.errors import ConfigError
from ffnlp.report.console import ConsoleReport
from ffnlp.tasks import registry

if TYPE_CHECKING:  # the training package imports torch: only when a command runs
    from ffnlp.training.callbacks import Callback


err_console = Console(stderr=True)
out_console = Console()
screen = ConsoleReport(out_console, err_console)  # every table and line of the commands

COMMAND_LINE: list[str] = []  # the arguments of the command being run (set by cli.main)


def relaunch_as_processes(nproc: int, max_restarts: int = 0) -> None:
    """``--nproc N`` (N > 1): run this very command line as N processes under torchrun on this
    machine (``--max-restarts``: torchrun's) and exit with its exit code. Under torchrun already,
    N > 1 is refused."""
    if nproc <= 1:
        if max_restarts:
            raise ConfigError(
                "--max-restarts restarts the processes that --nproc starts: use it with --nproc "
                "N (N > 1), or give it to torchrun"
            )
        return

    if os.environ.get("RANK", "") != "":
        raise ConfigError(
            "--nproc starts processes under torchrun itself; under torchrun already, leave it "
            "out (torchrun's --nproc-per-node sets the number of processes)"
        )
    kept = without_options(COMMAND_LINE, ("--nproc", "--max-restarts"))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc-per-node", str(nproc), "--max-restarts", str(max_restarts)]
    command += ["-m", "ffnlp", *kept]
    raise typer.Exit(subprocess.call(command))


def without_options(
    argv: list[str], valued: tuple[str, ...], flags: tuple[str, ...] = ()
) -> list[str]:
    """``argv`` less the options ``valued`` with their values (``--name VALUE`` or
    ``--name=VALUE``) and the flags ``flags``."""
    joined = tuple(f"{name}=" for name in valued if name.startswith("--"))
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in valued:
            skip = True
        elif arg not in flags and not arg.startswith(joined):
            kept.append(arg)
    return kept


def setup_logging(quiet: bool, level: int = logging.INFO) -> None:
    """Library messages from ``level`` (e.g. skipped lines) go to stderr; errors alone (--quiet)."""
    root = logging.getLogger("ffnlp")
    root.handlers.clear()
    root.setLevel(logging.ERROR if quiet else level)
    root.addHandler(RichHandler(console=err_console, show_time=False, show_path=False))
    root.propagate = False


def progress_callbacks(quiet: bool) -> list[Callback]:
    """How training shows its progress on stderr, unless --quiet (ffnlp.training.progress)."""
    from ffnlp.training.progress import progress_callbacks as shown  # imports torch

    return shown(quiet, err_console)


def recipe_args(run: RunOptions, out: Path | None) -> dict[str, Any]:
    """The keywords every recipe takes from the options every `train` command ends with."""
    return {
        "out": run.resume if run.resume is not None else out,
        "resume": run.resume is not None,
        "callbacks": progress_callbacks(run.quiet or run.json),
        "force": run.force,
        "init_from": run.init_from,
    }


def print_json(obj: Any) -> None:
    typer.echo(json.dumps(obj))


def print_result(result: Any, json_: bool, show: Callable[[Any], None]) -> None:
    """What most commands end with: ``result`` as one JSON object (--json), else ``show(result)``
    (its tables and lines)."""
    if json_:
        print_json(result)
    else:
        show(result)


def train(
    task: str,
    inputs: Sequence[Path | None],
    run: RunOptions,
    config: Path | None,
    set_: Sequence[str],
    out: Path | None,
    seed: int | None,
    seeds: str | None = None,
    data: Mapping[str, Any] | None = None,
    **keywords: Any,
) -> None:
    """The body of every `train` command: as several processes (--nproc), logging; with
    ``--seeds`` the runs of `ffnlp repeat` (the options of a single run refused), else the task's
    recipe with the ``inputs`` it names (the first one required) and ``keywords``; then
    summary.json (--json), nothing (--quiet), or the task's table of the trained object."""
    relaunch_as_processes(run.nproc, run.max_restarts)
    setup_logging(run.quiet or run.json)
    if inputs[0] is None:
        raise typer.BadParameter("--train is required", param_hint="--train")
    if seeds is not None:
        with_ = keywords.get("interpolate_with")
        overrides = settings(set_, run, data=data, interpolate_with=with_, one_run=False)
        single = {"--seed": seed is not None, "--resume": run.resume is not None}
        single |= {"--force": run.force, "--init-from": run.init_from is not None}
        if clashing := [option for option, given in single.items() if given]:
            raise typer.BadParameter(
                f"--seeds trains one run per seed (as `ffnlp repeat`); {clashing[0]} is for a "
                "single run: leave one of them out",
                param_hint="--seeds",
            )
        splits = dict(zip(("train", "dev", "test"), inputs, strict=True))
        recipe = {"config": config, "overrides": overrides, "out": out}
        return run_repeat(
            task,
            parse_seeds(seeds),
            run.quiet,
            run.json,
            **splits,
            **recipe,
            tensorboard=run.tensorboard,
        )
    spec = registry.spec(task)  # the recipe imports torch
    named = dict(zip(spec.inputs[1:], inputs[1:], strict=True))
    options = {"config": config, "overrides": settings(set_, run, data=data), "seed": seed}
    result = spec.train(inputs[0], **named, **options, **keywords, **recipe_args(run, out))
    if run.json:
        print_json(result.summary)
    elif not run.quiet:
        getattr(screen, f"{task}_train")(result)


def refuse(*checks: tuple[Any, str, str | None]) -> None:
    """A usage error (exit 2: ``Invalid value for OPTION: MESSAGE``) for the first of the
    ``(failed, message, option)`` checks that failed."""
    for failed, message, option in checks:
        if failed:
            raise typer.BadParameter(message, param_hint=option)


def parse_seeds(text: str, first_seed: int = 0, option: str = "--seeds") -> list[int]:
    """``"5"``: five seeds from ``first_seed``; ``"0,1,2"``: those seeds. A usage error (exit 2)
    naming ``option`` when it is neither."""
    try:
        numbers = [int(part) for part in text.split(",")]
    except ValueError:
        numbers = []
    count = len(numbers) == 1
    refuse(
        (
            not numbers or any(n < 0 for n in numbers),
            f"give a number of seeds (e.g. 5) or a list of seeds (e.g. 0,1,2); got {text!r}",
            option,
        ),
        (count and numbers[0] < 1, f"at least one seed is needed; got {text!r}", option),
        (
            not count and first_seed,
            "--first-seed goes with a number of seeds; a list names every seed itself",
            "--first-seed",
        ),
    )
    return list(range(first_seed, first_seed + numbers[0])) if count else numbers


def run_repeat(task: str, seeds: list[int], quiet: bool, json_: bool, **recipe: Any) -> None:
    """Train once per seed (``recipe``: the keywords of ffnlp.experiments.repeat.repeat) and print
    a line per seed, then the table of mean, sd and 95% CI (or the summary as JSON)."""
    from ffnlp.experiments.repeat import repeat as repeat_runs  # imports torch

    setup_logging(quiet or json_)
    done = itertools.count(1)  # the runs finished

    def progress(seed: int, row: dict[str, Any]) -> None:
        if not (quiet or json_):
            screen.repeat_seed(seed, next(done), len(seeds), row)

    callbacks = progress_callbacks(quiet or json_)
    result = repeat_runs(task, seeds=seeds, on_run=progress, callbacks=callbacks, **recipe)
    print_result(result, json_, lambda r: screen.repeat(task, len(seeds), r))


def lr_range_test(
    find_lr: Callable[..., Any],
    train: Path,
    sweep: Sweep,
    json_: bool,
    config: Path | None,
    set_: Sequence[str],
    seed: int | None,
    data: Mapping[str, Any] | None = None,
) -> None:
    """`classify lr-find`, `lm lr-find`: the task's sweep with its plot (ffnlp.report.lr_find),
    then the suggestion (or the JSON)."""
    from ffnlp.report.lr_find import range_test  # when a sweep runs

    overrides = settings(set_, data=data)
    setup_logging(json_)
    rates = {"lr_min": sweep.lr_min, "lr_max": sweep.lr_max, "steps": sweep.steps}
    options = {"config": config, "overrides": overrides, "seed": seed}
    result = range_test(find_lr, train, sweep.plot, sweep.out, **rates, **options)
    print_result(result, json_, screen.lr_find)
