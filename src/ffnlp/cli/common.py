"""Pieces every CLI command shares: output (human or --json), progress bars, option helpers."""

from __future__ import annotations

import json
import logging
import math
import os
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.logging import RichHandler

from ffnlp import config as cfgmod
from ffnlp.errors import ConfigError

if TYPE_CHECKING:  # the training package imports torch: only when a command runs
    from ffnlp.training.callbacks import Callback


err_console = Console(stderr=True)
out_console = Console()

COMMAND_LINE: list[str] = []  # the arguments of the command being run (set by cli.main)

SET_HELP = "Override one config value, e.g. --set train.lr=0.1 (repeatable)."
CONFIG_HELP = (
    "TOML config file, or the name of a preset shipped with ffnlp (e.g. sst2_ffnn; `ffnlp presets` "
    "lists them); a file of that name in the working folder wins (docs/configuration.md)."
)

# Options every `train` command takes, defined once (typer reads them as parameter defaults).
SET_OPTION: Any = typer.Option([], "--set", "-s", help=SET_HELP)
SEED_OPTION: Any = typer.Option(None, "--seed", help="Random seed (same as --set train.seed=N).")
RESUME_OPTION: Any = typer.Option(
    None, "--resume", help="Continue the interrupted run in this directory."
)
INIT_FROM_OPTION: Any = typer.Option(
    None,
    "--init-from",
    help="Continue a finished run of this task on new data: its weights and its configuration "
    "are the start (--config and --set apply over it), new words and labels get fresh rows; "
    "summary.json records the run under init_from. Not with --resume. See docs/continue.md.",
)
FORCE_OPTION: Any = typer.Option(
    False,
    "--force",
    help="Replace the run already in --out (the old one is deleted once the new one is complete).",
)
NPROC_OPTION: Any = typer.Option(
    1,
    "--nproc",
    min=1,
    help="Train as this many processes on this machine, one run (torchrun --standalone "
    "--nproc-per-node N; train.batch_size is shared between them). For several machines, start "
    "`torchrun ... -m ffnlp` on each (docs/scale.md).",
)


MAX_RESTARTS_OPTION: Any = typer.Option(
    0,
    "--max-restarts",
    min=0,
    help="With --nproc: when a process dies, start them all again up to this many times; the "
    "run continues from its last checkpoint (torchrun --max-restarts; train.checkpoint = true "
    "keeps one every epoch).",
)


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
    import subprocess

    if os.environ.get("RANK", "") != "":
        raise ConfigError(
            "--nproc starts processes under torchrun itself; under torchrun already, leave it "
            "out (torchrun's --nproc-per-node sets the number of processes)"
        )
    argv = list(COMMAND_LINE)
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--nproc", "--max-restarts"):
            skip = True
        elif not arg.startswith(("--nproc=", "--max-restarts=")):
            kept.append(arg)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc-per-node", str(nproc), "--max-restarts", str(max_restarts)]
    command += ["-m", "ffnlp", *kept]
    raise typer.Exit(subprocess.call(command))


QUIET_OPTION: Any = typer.Option(
    False, "--quiet", "-q", help="No progress (bar on a terminal, lines otherwise) or messages."
)
SUMMARY_JSON_OPTION: Any = typer.Option(False, "--json", help="Print summary.json to stdout.")
DIAGNOSTICS_OPTION: Any = typer.Option(
    False,
    "--diagnostics",
    help="Record dead/saturated units, gradient norms and update ratios at every evaluation, "
    "with warnings and advice (same as --set train.diagnostics=true).",
)

TENSORBOARD_OPTION: Any = typer.Option(
    None,
    "--tensorboard",
    help="Also write the train loss, lr and dev metrics as TensorBoard scalars into this folder, "
    "live (same as --set train.tensorboard=DIR; needs pip install 'ffnlp[tensorboard]').",
)

SEEDS_OPTION: Any = typer.Option(
    None,
    "--seeds",
    help="Train once per seed, as `ffnlp repeat` does (same folders and summary): a count N "
    "(seeds 0 to N-1) or a list such as 0,1,2; --out is the folder of the runs.",
)


def refuse_with_seeds(**given: bool) -> None:
    """A usage error when an option that makes one run (``given``: option -> whether it was
    given) comes with --seeds."""
    clashing = [option for option, present in given.items() if present]
    if clashing:
        raise typer.BadParameter(
            f"--seeds trains one run per seed (as `ffnlp repeat`); {clashing[0]} is for a single "
            "run: leave one of them out",
            param_hint="--seeds",
        )


def diagnostics_settings(diagnostics: bool) -> dict[str, Any]:
    """The setting that --diagnostics stands for (none when the flag is not given)."""
    return {"train.diagnostics": True} if diagnostics else {}


def command_settings(*parts: Mapping[str, Any] | Sequence[str]) -> dict[str, Any]:
    """The settings a command's options stand for, applied in order, a later one winning:
    ``--set``'s ``key=value`` strings (read by :func:`ffnlp.config.parse_settings`, the one
    reader of that text) and the typed settings of other options (--format, --diagnostics ...)."""
    return cfgmod.merge(*(p if isinstance(p, Mapping) else cfgmod.parse_settings(p) for p in parts))


def run_dir_option(task: str) -> Any:
    """--out of a `train` command."""
    return typer.Option(
        None, "--out", "-o", help=f"Run directory (default: runs/{task}-<date>-<time>)."
    )


def setup_logging(quiet: bool) -> None:
    """Library warnings (e.g. skipped lines) go to stderr unless --quiet."""
    root = logging.getLogger("ffnlp")
    root.handlers.clear()
    root.setLevel(logging.ERROR if quiet else logging.INFO)
    root.addHandler(RichHandler(console=err_console, show_time=False, show_path=False))
    root.propagate = False


PROGRESS_SECONDS_VARIABLE = "FFNLP_PROGRESS_SECONDS"


def progress_seconds() -> float:
    """Seconds between plain progress lines: $FFNLP_PROGRESS_SECONDS, else 10."""
    from ffnlp.training.progress import DEFAULT_SECONDS

    raw = os.environ.get(PROGRESS_SECONDS_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_SECONDS
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ConfigError(
            f"{PROGRESS_SECONDS_VARIABLE} must be a positive number of seconds between progress "
            f"lines; got {raw!r}. Set it to e.g. 30, or unset it for the default "
            f"({DEFAULT_SECONDS:g})."
        )
    return seconds


def progress_callbacks(quiet: bool) -> list[Callback]:
    """How training shows progress on stderr, unless --quiet: a Rich progress bar on a terminal;
    otherwise (a pipe, a file, CI, a notebook) a plain line every $FFNLP_PROGRESS_SECONDS
    seconds (default 10) and after every validation."""
    from ffnlp.runtime import is_main_process

    if quiet or not is_main_process():  # torchrun: the first rank shows the progress
        return []
    if sys.stderr.isatty():
        from ffnlp.training.callbacks import ProgressBar

        return [ProgressBar(console=err_console)]
    from ffnlp.training.progress import ProgressLines

    return [ProgressLines(every_seconds=progress_seconds())]


def print_json(obj: Any) -> None:
    typer.echo(json.dumps(obj))


def lineage_line(summary: dict[str, Any]) -> str | None:
    """One line saying which run a continued run started from and what grew (None for a run
    trained from scratch)."""
    lineage = summary.get("init_from")
    if not isinstance(lineage, dict):
        return None
    sizes = lineage.get("vocab") or lineage.get("input_rows") or {}
    grew = f"; rows {sizes['before']} -> {sizes['after']}" if sizes else ""
    labels = lineage.get("labels_added")
    added = f"; new labels: {', '.join(labels)}" if labels else ""
    return f"continued from {lineage['run']}{grew}{added}"


def short_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """Metrics without the bulky per-class and confusion entries (for tables)."""
    return {k: v for k, v in metrics.items() if not isinstance(v, (dict, list))}
