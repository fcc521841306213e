"""Pieces every CLI command shares: output (human or --json), progress bars, option helpers."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import typer
from rich.console import Console
from rich.logging import RichHandler

from ffnlp.training.callbacks import Callback, ProgressBar

err_console = Console(stderr=True)
out_console = Console()

SET_HELP = "Override one config value, e.g. --set train.lr=0.1 (repeatable)."
CONFIG_HELP = "TOML config file (see configs/ and docs/configuration.md)."

# Options every `train` command takes, defined once (typer reads them as parameter defaults).
SET_OPTION: Any = typer.Option([], "--set", "-s", help=SET_HELP)
SEED_OPTION: Any = typer.Option(None, "--seed", help="Random seed (same as --set train.seed=N).")
RESUME_OPTION: Any = typer.Option(
    None, "--resume", help="Continue the interrupted run in this directory."
)
FORCE_OPTION: Any = typer.Option(
    False,
    "--force",
    help="Replace the run already in --out (the old one is deleted once the new one is complete).",
)
QUIET_OPTION: Any = typer.Option(False, "--quiet", "-q", help="No progress bar or messages.")
SUMMARY_JSON_OPTION: Any = typer.Option(False, "--json", help="Print summary.json to stdout.")


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


def progress_callbacks(quiet: bool) -> list[Callback]:
    """A progress bar when stderr is a terminal and --quiet is not given; nothing otherwise."""
    if quiet or not sys.stderr.isatty():
        return []
    return [ProgressBar(console=err_console)]


def print_json(obj: Any) -> None:
    typer.echo(json.dumps(obj))


def short_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """Metrics without the bulky per-class and confusion entries (for tables)."""
    return {k: v for k, v in metrics.items() if not isinstance(v, (dict, list))}
