"""What every CLI command shares on the terminal: the consoles, logging, progress, JSON, and the
start of a `train` command (--nproc)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.logging import RichHandler

from ffnlp.cli.options import RunOptions, Sweep
from ffnlp.errors import ConfigError
from ffnlp.report.console import ConsoleReport

if TYPE_CHECKING:  # the training package imports torch: only when a command runs
    from ffnlp.training.callbacks import Callback


err_console = Console(stderr=True)
out_console = Console()
screen = ConsoleReport(out_console, err_console)  # every table and line of the commands

COMMAND_LINE: list[str] = []  # the arguments of the command being run (set by cli.main)


def begin_training(run: RunOptions) -> None:
    """The start of every `train` command: as several processes (--nproc), then logging."""
    relaunch_as_processes(run.nproc, run.max_restarts)
    setup_logging(run.quiet or run.json)


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


def setup_logging(quiet: bool) -> None:
    """Library warnings (e.g. skipped lines) go to stderr unless --quiet."""
    root = logging.getLogger("ffnlp")
    root.handlers.clear()
    root.setLevel(logging.ERROR if quiet else logging.INFO)
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


def finish_training(result: Any, run: RunOptions, show: Any) -> None:
    """The end of every `train` command: summary.json (--json), nothing (--quiet), or ``show``
    (the task's table) of the trained object."""
    if run.json:
        print_json(result.summary)
    elif not run.quiet:
        show(result)


def lr_range_test(
    find_lr: Callable[..., Any], train: Path, sweep: Sweep, json_: bool, **settings: Any
) -> None:
    """`classify lr-find`, `lm lr-find`: the task's sweep with its plot (ffnlp.report.lr_find),
    then the suggestion (or the JSON)."""
    from ffnlp.report.lr_find import range_test  # when a sweep runs

    setup_logging(json_)
    rates = {"lr_min": sweep.lr_min, "lr_max": sweep.lr_max, "steps": sweep.steps}
    result = range_test(find_lr, train, sweep.plot, sweep.out, **rates, **settings)
    print_result(result, json_, screen.lr_find)
